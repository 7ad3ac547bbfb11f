import Foundation
import MCP

/// One JSON value, parsed by Foundation's `JSONDecoder` into a plain tree without any
/// interpretation of its strings (the SDK's own `Value` decoder tests each string against a
/// data-URL regex that it compiles anew every time). Strings are tried first: they are the
/// common case, and each failed attempt costs a thrown error.
private struct PlainJSON: Decodable {
    let value: Value

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            value = .null
        } else if let s = try? c.decode(String.self) {
            value = .string(s)
        } else if let b = try? c.decode(Bool.self) {
            value = .bool(b)
        } else if let i = try? c.decode(Int.self) {
            value = .int(i)
        } else if let d = try? c.decode(Double.self) {
            value = .double(d)
        } else if let a = try? c.decode([PlainJSON].self) {
            value = .array(a.map(\.value))
        } else {
            value = .object(try c.decode([String: PlainJSON].self).mapValues(\.value))
        }
    }
}

/// A `tools/call` request's `arguments` as the client sent them. The SDK decodes arguments as
/// `Value`, which turns every string that parses as a data: URL into binary data: an argv item
/// such as "data:,hi" or an SSE line "data: a, b" would be refused as not a string, and file
/// content changed. The transports keep each `tools/call` message's raw bytes (the HTTP one in
/// its request context, the stdio one in `RawToolCalls`); the handler decodes the arguments from
/// them again, with strings left alone.
enum RawToolArguments {
    /// The arguments of the one `tools/call` of tool `name` in `body` (one message or a batch);
    /// nil when there is no such call or more than one (then the SDK's decoding is used).
    static func find(in body: Data?, tool name: String) -> [String: Value]? {
        guard let body, let message = try? JSONDecoder().decode(PlainJSON.self, from: body).value else { return nil }
        let messages: [Value]
        if case let .array(items) = message { messages = items } else { messages = [message] }
        let calls = messages.compactMap { m -> [String: Value]? in
            guard case let .object(o) = m, o["method"] == .string("tools/call"), case let .object(params)? = o["params"],
                  params["name"] == .string(name) else { return nil }
            if case let .object(arguments)? = params["arguments"] { return arguments }
            return [:]
        }
        return calls.count == 1 ? calls[0] : nil
    }
}

/// The raw bytes of the `tools/call` requests the stdio transport has read and the server has
/// not dispatched yet, by request id (see `RawToolArguments`). Bounded: a request the SDK never
/// dispatches (malformed) cannot make it grow without limit.
final class RawToolCalls: @unchecked Sendable {
    private let lock = NSLock()
    private var byID: [ID: Data] = [:]
    private var order: [ID] = []
    static let limit = 256

    private struct Envelope: Decodable {
        let id: ID?
        let method: String?
    }

    /// Remembers `line` when it is a `tools/call` request.
    func note(_ line: Data) {
        guard line.range(of: Data("tools/call".utf8)) != nil,
              let e = try? JSONDecoder().decode(Envelope.self, from: line), e.method == "tools/call", let id = e.id else { return }
        lock.withLock {
            if byID.updateValue(line, forKey: id) == nil { order.append(id) }
            while order.count > Self.limit { byID.removeValue(forKey: order.removeFirst()) }
        }
    }

    /// The request's bytes, once: the entry is dropped as the server dispatches it.
    func take(_ id: ID) -> Data? {
        lock.withLock {
            guard let data = byID.removeValue(forKey: id) else { return nil }
            order.removeAll { $0 == id }
            return data
        }
    }
}
