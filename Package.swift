// swift-tools-version: 6.1
//
// Switchboard: a specification-driven real-time WebSocket gateway.
// Imports only go downward:
//   JSON, Crypto  <-  Kernel, Codec, Bus  <-  POSIX  <-  Switchboard  <-  executables
import PackageDescription

let package = Package(
    name: "Switchboard",
    products: [
        .library(name: "Switchboard", targets: ["Switchboard"]),
        .library(name: "SwitchboardKernel", targets: ["SwitchboardKernel"]),
        .executable(name: "switchboard", targets: ["switchboard"]),
        .executable(name: "switchboard-fixture", targets: ["switchboard-fixture"]),
        .executable(name: "switchboard-gen", targets: ["switchboard-gen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C libraries of the design card, found through pkg-config.
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Generator: spec/protocol.yaml -> Sources/SwitchboardKernel/Generated + docs/.
        .target(name: "SwitchboardGen", dependencies: ["CYAML"], path: "Generator/Sources/SwitchboardGen"),
        .executableTarget(name: "switchboard-gen", dependencies: ["SwitchboardGen"],
                          path: "Generator/Sources/switchboard-gen"),

        // Pure layers: no sockets, no clocks, no randomness of their own.
        .target(name: "SwitchboardJSON"),
        .target(name: "SwitchboardKernel", dependencies: ["SwitchboardJSON"]),
        .target(name: "SwitchboardCrypto", dependencies: ["COpenSSL"]),
        .target(name: "SwitchboardCodec", dependencies: ["COpenSSL", "CZlib"]),
        .target(name: "SwitchboardBus", dependencies: ["SwitchboardJSON", "CHiredis"]),

        // IO: the POSIX driver (epoll, sockets, timers, writev).
        .target(name: "SwitchboardPOSIX", dependencies: ["COpenSSL"]),

        // Public API: Server, Options, Hooks, Driver protocol, Emitter.
        .target(name: "Switchboard", dependencies: [
            "SwitchboardKernel", "SwitchboardJSON", "SwitchboardCodec", "SwitchboardCrypto",
            "SwitchboardBus", "SwitchboardPOSIX", .product(name: "Logging", package: "swift-log"),
        ]),

        // A deterministic simulation driver: virtual clock, sockets, bus and hooks from one seed.
        .target(name: "SwitchboardSim", dependencies: ["Switchboard", "SwitchboardCodec", "SwitchboardBus"]),
        // `switchboard serve`: config file, JWT/token auth, room policy, demo page, metrics.
        .target(name: "SwitchboardServe", dependencies: [
            "Switchboard", "SwitchboardGen", "SwitchboardCrypto", "SwitchboardBus", "COpenSSL", "CYAML",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "switchboard", dependencies: ["Switchboard", "SwitchboardGen", "SwitchboardServe"]),
        .executableTarget(name: "switchboard-fixture", dependencies: ["Switchboard", "SwitchboardCrypto"]),
        .executableTarget(name: "switchboard-bench", dependencies: [
            "SwitchboardKernel", "SwitchboardJSON", "SwitchboardCrypto", "SwitchboardCodec",
        ]),

        .testTarget(name: "GeneratorTests", dependencies: ["SwitchboardGen"],
                    resources: [.copy("Specs")]),
        .testTarget(name: "KernelTableTests", dependencies: ["SwitchboardKernel"]),
        .testTarget(name: "KernelPropertyTests", dependencies: [
            "SwitchboardKernel",
            .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        .testTarget(name: "JSONTests", dependencies: ["SwitchboardJSON"]),
        .testTarget(name: "CodecTests", dependencies: ["SwitchboardCodec"]),
        .testTarget(name: "CryptoTests", dependencies: ["SwitchboardCrypto"]),
        .testTarget(name: "BusTests", dependencies: ["SwitchboardBus"]),
        .testTarget(name: "POSIXTests", dependencies: ["SwitchboardPOSIX"]),
        .testTarget(name: "EndToEndTests", dependencies: ["Switchboard", "SwitchboardCrypto"]),
        .testTarget(name: "SimTests", dependencies: ["SwitchboardSim", "Switchboard"]),
        .testTarget(name: "ServeTests", dependencies: ["SwitchboardServe", "Switchboard", "SwitchboardCrypto", "SwitchboardBus"]),
    ]
)
