/// The little-endian, length-prefixed encoding every binary format of Lanes uses: the spawn plan
/// and PID 1's report (lanes ↔ lane-init), and the compiled configuration cache.
public struct ByteWriter {
    public var out: [UInt8] = []
    public init() {}
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    /// A length (u32) and the bytes.
    public mutating func bytes(_ b: [UInt8]) {
        u32(UInt32(b.count))
        out.append(contentsOf: b)
    }
    public mutating func string(_ s: String) { bytes(Array(s.utf8)) }
    /// A count (u32) and each string.
    public mutating func strings(_ list: [String]) {
        u32(UInt32(list.count))
        for s in list { string(s) }
    }
}

/// Reads what `ByteWriter` wrote; every read past the end, or any count larger than the input,
/// throws with the offset where it stopped.
public struct ByteReader {
    public let input: [UInt8]
    public private(set) var offset = 0
    public init(input: [UInt8]) { self.input = input }

    /// True when every byte has been read (a decoder checks it: trailing bytes are an error).
    public var atEnd: Bool { offset == input.count }

    public mutating func take(_ n: Int) throws(PlanDecodingError) -> ArraySlice<UInt8> {
        guard n >= 0, input.count - offset >= n else { throw PlanDecodingError(offset: offset) }
        defer { offset += n }
        return input[offset..<offset + n]
    }
    public mutating func u32() throws(PlanDecodingError) -> UInt32 {
        var v: UInt32 = 0
        for (i, b) in try take(4).enumerated() { v |= UInt32(b) << (8 * UInt32(i)) }
        return v
    }
    public mutating func u64() throws(PlanDecodingError) -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
    public mutating func count() throws(PlanDecodingError) -> Int {
        let n = Int(try u32())
        guard n <= input.count else { throw PlanDecodingError(offset: offset) }
        return n
    }
    public mutating func bytes() throws(PlanDecodingError) -> [UInt8] { Array(try take(try count())) }
    public mutating func string() throws(PlanDecodingError) -> String { String(decoding: try bytes(), as: UTF8.self) }
    public mutating func strings() throws(PlanDecodingError) -> [String] {
        var list: [String] = []
        for _ in 0..<(try count()) { list.append(try string()) }
        return list
    }
    /// The error for a value that cannot be what was read (at the current offset).
    public func failure() -> PlanDecodingError { PlanDecodingError(offset: offset) }
    /// Fails (at the current offset) unless `condition` holds: for values a decoder validates.
    public func require(_ condition: Bool) throws(PlanDecodingError) {
        if !condition { throw PlanDecodingError(offset: offset) }
    }
}
