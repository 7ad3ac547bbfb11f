import Glibc

/// The working directory (getcwd(3)); nil when it cannot be read (say, it was removed).
public func currentWorkingDirectory() -> String? {
    guard let cwd = getcwd(nil, 0) else { return nil }
    defer { free(cwd) }
    return String(decoding: UnsafeRawBufferPointer(start: cwd, count: strlen(cwd)), as: UTF8.self)
}

/// `mkdir -p -m MODE` of an absolute `path`: every missing directory is made with `mode` (less
/// the umask); existing ones are left as they are. nil on success, else the directory that could
/// not be made and the errno.
public func makeDirectories(_ path: String, mode: mode_t) -> (directory: String, errno: Int32)? {
    var prefix = ""
    for part in path.split(separator: "/") {
        prefix += "/"
        prefix += String(part)  // String + Substring would be a generic append (a runtime lookup)
        if mkdir(prefix, mode) != 0 && errno != EEXIST { return (prefix, errno) }
    }
    return nil
}
