import Foundation
import Glibc
import Logging
import MCP

/// The MCP stdio transport (newline-delimited JSON-RPC) over two file descriptors, written for
/// `lanes mcp` instead of the SDK's `StdioTransport`, which polls a non-blocking stdin with 10 ms
/// sleeps (10 ms of latency per idle call) and rescans its whole buffer on every 4 KiB read
/// (quadratic in a message's size). Here one dedicated thread blocks in read(2) and scans each
/// byte once; a message longer than `maxMessageBytes` is discarded as it streams in and answered
/// with a JSON-RPC error naming its size (its id is read from its first bytes), so a 100 MB
/// argument costs no memory and the server keeps serving. Writes are blocking and serialized by
/// the actor: nothing but protocol ever reaches the output fd.
public actor LineTransport: Transport, HTTPContextProviding {
    public nonisolated let logger: Logger
    private let input: Int32
    private let output: Int32
    private let maxMessageBytes: Int
    private let stream: AsyncThrowingStream<Data, Swift.Error>
    private let continuation: AsyncThrowingStream<Data, Swift.Error>.Continuation
    private var connected = false
    /// The raw `tools/call` messages, for `httpRequestContext(for:)` (see `RawToolArguments`).
    private let rawCalls = RawToolCalls()

    /// - Parameters:
    ///   - maxMessageBytes: the longest message accepted (longer ones get error -32600).
    public init(input: Int32 = 0, output: Int32 = 1, maxMessageBytes: Int = 16 << 20, logger: Logger) {
        self.input = input
        self.output = output
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
        (stream, continuation) = AsyncThrowingStream<Data, Swift.Error>.makeStream()
    }

    public func connect() async throws {
        guard !connected else { return }
        connected = true
        let reader = Reader(fd: input, limit: maxMessageBytes, continuation: continuation, rawCalls: rawCalls,
                            oversized: { [weak self] id, size in
                                guard let self else { return }
                                Task { await self.refuseOversized(id: id, size: size) }
                            })
        let thread = Thread { reader.run() }
        thread.name = "lanes-mcp-reader"
        thread.start()
    }

    public func disconnect() async {
        guard connected else { return }
        connected = false
        continuation.finish()
    }

    public func send(_ data: Data) async throws {
        var bytes = [UInt8](data)
        bytes.append(UInt8(ascii: "\n"))
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { b -> Int in
                guard let base = b.baseAddress else { return 0 }
                return write(output, base + offset, b.count - offset)
            }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw MCPError.transportError(POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO))
            }
            offset += n
        }
    }

    public func receive() -> AsyncThrowingStream<Data, Swift.Error> { stream }

    /// Not HTTP: the SDK asks every transport that provides a request context for one before it
    /// dispatches a request; for a `tools/call` this one hands back the message as read, so the
    /// handler sees the arguments exactly as sent (`RawToolArguments`).
    public func httpRequestContext(for id: ID) -> HTTPRequest? {
        rawCalls.take(id).map { HTTPRequest(method: "POST", body: $0) }
    }

    /// The answer to a message that was too long: error -32600 with its id when one was found.
    private func refuseOversized(id: String?, size: Int) async {
        let message = "request too large: \(size) bytes or more, the limit is \(maxMessageBytes) bytes; it was discarded"
        let text = "{\"jsonrpc\":\"2.0\",\"id\":\(id ?? "null"),\"error\":{\"code\":-32600,\"message\":\"\(message)\"}}"
        logger.warning("discarded an oversized message", metadata: ["bytes": "\(size)"])
        try? await send(Data(text.utf8))
    }

    /// The reading thread's state: splits lines, streams them out, discards oversized ones.
    final class Reader: @unchecked Sendable {
        let fd: Int32
        let limit: Int
        let continuation: AsyncThrowingStream<Data, Swift.Error>.Continuation
        let rawCalls: RawToolCalls
        let oversized: @Sendable (String?, Int) -> Void

        init(fd: Int32, limit: Int, continuation: AsyncThrowingStream<Data, Swift.Error>.Continuation,
             rawCalls: RawToolCalls, oversized: @escaping @Sendable (String?, Int) -> Void) {
            self.fd = fd
            self.limit = limit
            self.continuation = continuation
            self.rawCalls = rawCalls
            self.oversized = oversized
        }

        func run() {
            var line: [UInt8] = []
            var discarding = 0  // > 0: bytes of an oversized message seen so far
            var discardedHead: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                var start = 0
                for i in 0..<n where buffer[i] == UInt8(ascii: "\n") {
                    if discarding > 0 {
                        oversized(Self.requestID(discardedHead), discarding + (i - start))
                        discarding = 0
                        discardedHead = []
                    } else {
                        line.append(contentsOf: buffer[start..<i])
                        if line.count > limit {
                            oversized(Self.requestID(Array(line.prefix(4096))), line.count)
                        } else if !line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) {
                            let message = Data(line)
                            rawCalls.note(message)  // before the SDK can see it
                            continuation.yield(message)
                        }
                        line.removeAll(keepingCapacity: line.count < (1 << 20))
                    }
                    start = i + 1
                }
                if discarding > 0 {
                    discarding += n - start
                } else {
                    line.append(contentsOf: buffer[start..<n])
                    if line.count > limit {
                        discarding = line.count
                        discardedHead = Array(line.prefix(4096))
                        line = []
                    }
                }
            }
            continuation.finish()
        }

        /// The JSON-RPC id in the first bytes of a message (`"id": 7` or `"id": "x"`), as JSON
        /// text; nil when none is found.
        static func requestID(_ head: [UInt8]) -> String? {
            let text = String(decoding: head, as: UTF8.self)
            guard let key = text.range(of: "\"id\"") else { return nil }
            var rest = text[key.upperBound...].drop { $0 == " " || $0 == "\t" }
            guard rest.first == ":" else { return nil }
            rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
            if rest.first == "\"" {
                let body = rest.dropFirst().prefix { $0 != "\"" && $0 != "\\" }
                return body.count < 200 ? "\"" + body + "\"" : nil
            }
            let digits = rest.prefix { $0.isNumber || $0 == "-" }
            return digits.isEmpty || digits.count > 20 ? nil : String(digits)
        }
    }
}
