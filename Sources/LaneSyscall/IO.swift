import Glibc
import SystemPackage

/// The one EINTR loop: runs a syscall wrapper again while it fails with EINTR. Every read,
/// write, wait and sleep of Lanes that can be interrupted goes through it.
@inlinable
public func retryOnInterrupt<T: FixedWidthInteger>(_ call: () -> T) -> T {
    while true {
        let r = call()
        if r == -1 && Glibc.errno == EINTR { continue }
        return r
    }
}

extension FileDescriptor {
    /// One read(2) into `buffer` (EINTR retried). Returns 0 at end of file; throws `Errno` (e.g.
    /// `.wouldBlock` on a non-blocking descriptor with nothing to read).
    public func readSome(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let n = retryOnInterrupt { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
        if n < 0 { throw Errno.last }
        return n
    }

    /// One write(2) of `buffer` (EINTR retried); returns how much was written.
    public func writeSome(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        let n = retryOnInterrupt { Glibc.write(rawValue, buffer.baseAddress, buffer.count) }
        if n < 0 { throw Errno.last }
        return n
    }

    /// Reads until end of file (or `limit` bytes).
    public func readAll(limit: Int = .max) throws(Errno) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let want = min(chunk.count, limit - out.count)
            let n = try chunk.withUnsafeMutableBytes { b in
                Result { () throws(Errno) in try readSome(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<want])) }
            }.get()
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Reads until `buffer` is full or end of file; returns how many bytes were read.
    public func readFully(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        var got = 0
        while got < buffer.count {
            let n = try readSome(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...]))
            if n == 0 { break }
            got += n
        }
        return got
    }

    /// Writes every byte of `buffer`, or throws (a write that makes no progress is `EPIPE`).
    public func writeAll(_ buffer: UnsafeRawBufferPointer) throws(Errno) {
        var done = 0
        while done < buffer.count {
            let n = try writeSome(UnsafeRawBufferPointer(rebasing: buffer[done...]))
            if n <= 0 { throw Errno.brokenPipe }
            done += n
        }
    }

    /// Writes every byte of `bytes`.
    public func writeAll(_ bytes: [UInt8]) throws(Errno) {
        try bytes.withUnsafeBytes { b in Result { () throws(Errno) in try writeAll(b) } }.get()
    }

    /// Writes all of `text` as UTF-8.
    public func writeAll(_ text: String) throws(Errno) {
        try writeAll(Array(text.utf8))
    }
}

/// Reads a whole file, or nil when it cannot be opened or read.
public func readWholeFile(_ path: String, flags: Int32 = 0, limit: Int = .max) -> [UInt8]? {
    guard let fd = try? FileDescriptor.openOwned(path, O_RDONLY | flags) else { return nil }
    return try? fd.descriptor.readAll(limit: limit)
}

/// Writes `text` to an existing file in one go (e.g. a /proc or cgroup control file); returns
/// 0 or the errno.
public func writeExistingFile(_ path: String, _ text: String) -> Int32 {
    do {
        let fd = try FileDescriptor.openOwned(path, O_WRONLY)
        try fd.descriptor.writeAll(text)
        return 0
    } catch {
        return error.rawValue
    }
}
