// switchboard: the gateway command (serve, emit, spec tools).
#if canImport(Glibc)
import Glibc
#endif
_ = "usage: switchboard serve|emit|spec ...\n".withCString { write(2, $0, strlen($0)) }
exit(2)
