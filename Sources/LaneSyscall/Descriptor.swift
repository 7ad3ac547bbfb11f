import CLaneSys
import Glibc
@_exported import SystemPackage

/// A file descriptor with exactly one owner, which closes it: when the owner goes out of scope,
/// or earlier with `close()`. It cannot be copied, so no descriptor is closed twice and none is
/// forgotten on an early return; `take()` hands the number to a new owner (e.g. a child's fd map).
public struct OwnedDescriptor: ~Copyable {
    /// The descriptor (borrowed: valid while this owner lives).
    public let descriptor: FileDescriptor

    /// Takes ownership of an open descriptor.
    public init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }

    /// Takes ownership of an open descriptor number.
    public init(adopting raw: Int32) { descriptor = FileDescriptor(rawValue: raw) }

    /// The descriptor's number, for C calls (valid while this owner lives).
    public var raw: Int32 { descriptor.rawValue }

    /// Closes the descriptor now.
    public consuming func close() {}

    /// Gives up ownership without closing: the caller owns the number from now on.
    public consuming func take() -> FileDescriptor {
        let d = descriptor
        discard self
        return d
    }

    deinit { _ = Glibc.close(descriptor.rawValue) }
}

/// Both ends of a pipe, each with its owner.
/// `@frozen` so a caller may consume one end and keep the other.
@frozen
public struct PipeEnds: ~Copyable {
    public var read: OwnedDescriptor
    public var write: OwnedDescriptor

    /// A close-on-exec pipe (pipe2(O_CLOEXEC)).
    public init() throws(Errno) {
        var fds: [Int32] = [-1, -1]
        guard lane_pipe2(&fds, O_CLOEXEC) == 0 else { throw Errno.last }
        read = OwnedDescriptor(adopting: fds[0])
        write = OwnedDescriptor(adopting: fds[1])
    }
}

extension FileDescriptor {
    /// Opens `path` close-on-exec, owned by the caller.
    public static func openOwned(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(Errno) -> OwnedDescriptor {
        let fd = retryOnInterrupt { Glibc.open(path, flags | O_CLOEXEC, mode) }
        guard fd >= 0 else { throw Errno.last }
        return OwnedDescriptor(adopting: fd)
    }
}

extension Errno {
    /// The calling thread's errno now.
    public static var last: Errno { Errno(rawValue: Glibc.errno) }

    /// strerror's text ("No such file or directory").
    public var reason: String { String(cString: strerror(rawValue)) }
}
