// swift-tools-version: 6.1
//
// Switchboard: a specification-driven real-time WebSocket gateway.
// Imports only go downward (each arrow points at what a module imports; C libraries left out):
//   SwitchboardJSON   SwitchboardCrypto   SwitchboardDriverSupport
//   SwitchboardKernel -> JSON             SwitchboardCodec -> Crypto
//   SwitchboardBus -> JSON, DriverSupport  SwitchboardPOSIX -> DriverSupport
//   SwitchboardGen -> Crypto              (the generator; also the YAML reader)
//   Switchboard -> Kernel, JSON, Codec, Bus, POSIX, DriverSupport
//   FixtureRouting -> Switchboard          (the test app's routes: the fixture's and the Sim's)
//   SwitchboardSim -> Switchboard, Codec, Crypto, Bus, DriverSupport, FixtureRouting
//   SwitchboardServe -> Switchboard, Gen, Crypto, Bus, POSIX, Codec (and AsyncHTTPClient, for JWKS URLs)
//   SwitchboardMetrics -> Switchboard (and swift-metrics)
//   SwitchboardDriverConformance -> Switchboard, TestSupport (a driver's checks, for Swift Testing)
//   BlockingDriver -> Switchboard (the example driver of docs/drivers.md and the README)
//   SwitchboardNIO -> Switchboard (and swift-nio: NIOCore, NIOPosix; swift-nio-ssl: NIOSSL)
//   SwitchboardURing -> Switchboard (and CURing: io_uring through <linux/io_uring.h>)
//   SwitchboardHummingbird -> Switchboard, SwitchboardNIO (and HummingbirdCore, NIOCore, swift-log)
//   hummingbird-gateway -> Switchboard, SwitchboardHummingbird, ServiceLifecycle (its example app)
//   executables -> Switchboard, Serve, Crypto, FixtureRouting (bench: Kernel, JSON, Codec, Crypto;
//                  switchboard-fixture also SwitchboardNIO and SwitchboardURing, for --driver nio|uring;
//                  nio-websocket-echo only swift-nio, the codec measurement's other side)
// A custom driver needs only Switchboard (`Driver`, `SharedBytes`, the building blocks of
// SwitchboardDriverSupport it re-exports), never SwitchboardPOSIX.
import PackageDescription

let package = Package(
    name: "Switchboard",
    products: [
        .library(name: "Switchboard", targets: ["Switchboard"]),
        .library(name: "SwitchboardKernel", targets: ["SwitchboardKernel"]),
        .library(name: "SwitchboardServiceLifecycle", targets: ["SwitchboardServiceLifecycle"]),
        .library(name: "SwitchboardMetrics", targets: ["SwitchboardMetrics"]),
        .library(name: "SwitchboardDriverConformance", targets: ["SwitchboardDriverConformance"]),
        .library(name: "SwitchboardNIO", targets: ["SwitchboardNIO"]),
        .library(name: "SwitchboardURing", targets: ["SwitchboardURing"]),
        .library(name: "SwitchboardHummingbird", targets: ["SwitchboardHummingbird"]),
        .executable(name: "switchboard", targets: ["switchboard"]),
        .executable(name: "switchboard-fixture", targets: ["switchboard-fixture"]),
        .executable(name: "switchboard-gen", targets: ["switchboard-gen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // In the graph already (AsyncHTTPClient, Hummingbird); SwitchboardNIO's wss:// names it.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // C libraries of the design card, found through pkg-config.
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // io_uring's system calls, ring barriers and submission entries as static inline C over
        // the kernel's <linux/io_uring.h> (no liburing: nothing to link).
        .systemLibrary(name: "CURing"),

        // Generator: spec/protocol.yaml -> Sources/SwitchboardKernel/Generated + docs/.
        .target(name: "SwitchboardGen", dependencies: ["CYAML", "SwitchboardCrypto"], path: "Generator/Sources/SwitchboardGen"),
        .executableTarget(name: "switchboard-gen", dependencies: ["SwitchboardGen"],
                          path: "Generator/Sources/switchboard-gen"),

        // Pure layers: no sockets, no clocks, no randomness of their own.
        .target(name: "SwitchboardJSON"),
        .target(name: "SwitchboardKernel", dependencies: ["SwitchboardJSON"]),
        .target(name: "SwitchboardCrypto", dependencies: ["COpenSSL"]),
        .target(name: "SwitchboardCodec", dependencies: ["SwitchboardCrypto", "CZlib"]),
        .target(name: "SwitchboardBus", dependencies: ["SwitchboardJSON", "SwitchboardDriverSupport", "CHiredis"]),

        // What every driver builds on (shared output bytes, a timer heap, a loop task executor,
        // an outbound queue); no IO of its own.
        .target(name: "SwitchboardDriverSupport"),

        // IO: the POSIX driver (epoll, sockets, timers, writev).
        .target(name: "SwitchboardPOSIX", dependencies: ["SwitchboardDriverSupport", "COpenSSL"]),

        // Public API: Server, Options, Hooks, Driver protocol, Emitter.
        .target(name: "Switchboard", dependencies: [
            "SwitchboardKernel", "SwitchboardJSON", "SwitchboardCodec", "SwitchboardBus",
            "SwitchboardDriverSupport", "SwitchboardPOSIX", .product(name: "Logging", package: "swift-log"),
        ]),

        // `SwitchboardService`: a Server run and shut down by a ServiceLifecycle `ServiceGroup`.
        .target(name: "SwitchboardServiceLifecycle", dependencies: [
            "Switchboard", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // The routes of the test application, shared by switchboard-fixture and the Sim's app.
        .target(name: "FixtureRouting", dependencies: ["Switchboard"]),
        // A deterministic simulation driver: virtual clock, sockets, bus and hooks from one seed.
        .target(name: "SwitchboardSim", dependencies: [
            "Switchboard", "SwitchboardCodec", "SwitchboardCrypto", "SwitchboardBus", "SwitchboardDriverSupport",
            "FixtureRouting",
        ]),
        // The driver conformance kit: a driver's factory in, checks of docs/drivers.md out.
        .target(name: "SwitchboardDriverConformance", dependencies: ["Switchboard", "TestSupport"]),
        // A driver on SwiftNIO (one EventLoop, the engine's own codec on bytes, wss:// through
        // swift-nio-ssl); only its users build NIO.
        .target(name: "SwitchboardNIO", dependencies: [
            "Switchboard", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // A driver on io_uring (multishot accept and receive, provided buffers, one enter per turn).
        .target(name: "SwitchboardURing", dependencies: ["Switchboard", "CURing"]),
        // The gateway on a path of a Hummingbird 2 app's own HTTP/1 server (its port and loop).
        .target(name: "SwitchboardHummingbird", dependencies: [
            "Switchboard", "SwitchboardNIO", .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
        ]),
        // A minimal driver (blocking sockets, a thread per connection), built by `make test`.
        .target(name: "BlockingDriver", dependencies: ["Switchboard"], path: "Examples/BlockingDriver"),
        // ServerMetrics reported to swift-metrics (whatever backend the application bootstraps).
        .target(name: "SwitchboardMetrics", dependencies: ["Switchboard", .product(name: "Metrics", package: "swift-metrics")]),
        // `switchboard serve`: config file, JWT/token auth, room policy, demo page, metrics.
        .target(name: "SwitchboardServe", dependencies: [
            "Switchboard", "SwitchboardGen", "SwitchboardCrypto", "SwitchboardBus", "COpenSSL",
            // The internal listener: an event loop of its own and the request-head parser.
            "SwitchboardPOSIX", "SwitchboardCodec",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            // Fetches a JWKS from an HTTP(S) URL; no other target needs an HTTP client.
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),

        .executableTarget(name: "switchboard", dependencies: ["Switchboard", "SwitchboardServe"]),
        // `--driver nio` runs the fixture on SwitchboardNIO, `--driver uring` on SwitchboardURing
        // (the end-to-end suite on either).
        .executableTarget(name: "switchboard-fixture", dependencies: [
            "Switchboard", "SwitchboardCrypto", "FixtureRouting", "SwitchboardNIO", "SwitchboardURing",
        ]),
        // The example app of SwitchboardHummingbird (docs/drivers.md), built by `make test`.
        .executableTarget(name: "hummingbird-gateway", dependencies: [
            "Switchboard", "SwitchboardHummingbird", "SwitchboardServiceLifecycle",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], path: "Examples/HummingbirdGateway"),
        // The codec measurement of docs/drivers.md: a WebSocket echo on NIO's own upgrade and
        // frames, beside the fixture's --raw-echo --driver nio (scripts/codec-compare).
        .executableTarget(name: "nio-websocket-echo", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"),
        ], path: "bench/nio-websocket-echo"),
        .executableTarget(name: "switchboard-bench", dependencies: [
            "SwitchboardKernel", "SwitchboardJSON", "SwitchboardCrypto", "SwitchboardCodec",
        ]),

        // What the test targets share: free loopback ports, redis-server, a WebSocket client
        // (framing with SwitchboardCodec.ClientFrame), child processes, hex and a seeded
        // generator. A regular target so tests can import it.
        .target(name: "TestSupport", dependencies: ["SwitchboardJSON", "SwitchboardCodec", "SwitchboardCrypto"],
                path: "Tests/TestSupport"),

        .testTarget(name: "GeneratorTests", dependencies: ["SwitchboardGen"],
                    resources: [.copy("Specs")]),
        .testTarget(name: "KernelTableTests", dependencies: ["SwitchboardKernel", "SwitchboardJSON"]),
        // The oracle reads spec/protocol.yaml through SwitchboardGen; Golden holds the traces.
        .testTarget(name: "KernelPropertyTests", dependencies: [
            "SwitchboardKernel", "SwitchboardJSON", "SwitchboardGen", "TestSupport", "SwitchboardBus",
            .product(name: "PropertyBased", package: "swift-property-based"),
        ], resources: [.copy("Golden")]),
        .testTarget(name: "JSONTests", dependencies: ["SwitchboardJSON", "TestSupport"]),
        .testTarget(name: "CodecTests", dependencies: ["SwitchboardCodec", "SwitchboardCrypto", "CZlib", "TestSupport"]),
        .testTarget(name: "CryptoTests", dependencies: ["SwitchboardCrypto", "TestSupport"]),
        .testTarget(name: "BusTests", dependencies: ["SwitchboardBus", "TestSupport"]),
        .testTarget(name: "POSIXTests", dependencies: [
            "SwitchboardPOSIX", "SwitchboardDriverSupport", "COpenSSL", "TestSupport",
        ]),
        .testTarget(name: "EndToEndTests", dependencies: ["Switchboard", "SwitchboardCrypto", "TestSupport"]),
        .testTarget(name: "SimTests", dependencies: ["SwitchboardSim", "Switchboard", "SwitchboardBus"]),
        // The engine driven directly with a recording driver (write by write).
        .testTarget(name: "EngineTests", dependencies: ["Switchboard", "SwitchboardKernel", "SwitchboardBus", "SwitchboardCodec"]),
        // The conformance kit against the POSIX, example, SwiftNIO and io_uring drivers.
        .testTarget(name: "DriverConformanceTests", dependencies: [
            "SwitchboardDriverConformance", "Switchboard", "SwitchboardSim", "BlockingDriver", "SwitchboardNIO", "TestSupport",
            "SwitchboardURing",
        ]),
        // A Hummingbird 2 app with the gateway on /ws of its port.
        .testTarget(name: "SwitchboardHummingbirdTests", dependencies: [
            "SwitchboardHummingbird", "Switchboard", "SwitchboardServiceLifecycle", "TestSupport",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOPosix", package: "swift-nio"),  // an app group of several loops
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "ServiceLifecycleTests", dependencies: [
            "SwitchboardServiceLifecycle", "Switchboard", "TestSupport",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "SwitchboardMetricsTests", dependencies: [
            "SwitchboardMetrics", "Switchboard", .product(name: "MetricsTestKit", package: "swift-metrics"),
        ]),
        .testTarget(name: "ServeTests", dependencies: [
            "SwitchboardServe", "Switchboard", "SwitchboardCrypto", "SwitchboardBus", "TestSupport",
            "COpenSSL",  // a wss:// client for the certificate reload
        ]),
    ]
)
