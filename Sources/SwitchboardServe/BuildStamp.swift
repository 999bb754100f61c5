/// Facts a release build records about itself. A checkout leaves them unset; a packaging
/// step may rewrite this file (or set `SWITCHBOARD_VERSION=VERSION+COMMIT` at run time).
enum BuildStamp {
    /// The git commit the binary was built from, when the build recorded it.
    static let commit: String? = nil
}
