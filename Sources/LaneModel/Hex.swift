/// Lower-case hex of bytes (hashes and fingerprints are shown this way everywhere).
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    // Digits by arithmetic, not from `Array("0123456789abcdef".utf8)`: that conversion cost a
    // scan of the static binary's protocol conformances on first use (docs/benchmarks.md, stop 11).
    func digit(_ v: UInt8) -> UInt8 { v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10 }
    var out = [UInt8]()
    out.reserveCapacity(bytes.underestimatedCount * 2)
    for b in bytes {
        out.append(digit(b >> 4))
        out.append(digit(b & 15))
    }
    return String(decoding: out, as: UTF8.self)
}
