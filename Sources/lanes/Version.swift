/// The version of Lanes: the one place it is written (`lanes --version`).
enum LanesVersion {
    static let string = "0.11.0"
}
