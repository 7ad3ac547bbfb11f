import Glibc

/// Writes a line to stderr.
func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

/// Writes to stdout without buffering surprises at exit.
func printOut(_ text: String) {
    _ = text.withCString { write(1, $0, strlen($0)) }
}
