import Foundation
import Glibc
import Logging
import MCP
import NIOCore
import NIOHTTP1
import NIOPosix

/// `lanes mcp --listen unix:PATH`: MCP Streamable HTTP on a unix socket, for several agents at
/// once. The SDK has the protocol half (`StatefulHTTPServerTransport`, one per session) but no
/// HTTP server; this is the HTTP half on SwiftNIO (no event loop written here). The socket is
/// made 0600 before the first accept, so only this uid (and root) can connect; each connection's
/// peer is read with SO_PEERCRED, logged with each step and put in the `X-Lanes-Peer` header the
/// tool handlers see (a client-sent header of that name is replaced). All sessions share one
/// `LaneMCPServer`: one step service, one run.
public enum UnixHTTPListener {
    /// The default `--max-sessions` (sessions kept open), and what it accepts.
    public static let defaultMaxSessions = 256
    public static let maxSessionsRange = 1...65536

    /// Serves until the process ends.
    /// `group`: the lane's `socket_group` (the socket is then 0660 and owned by it);
    /// `maxSessions`: how many MCP sessions stay open (`--max-sessions`).
    public static func serve(path: String, group: String?, maxSessions: Int, server: LaneMCPServer, logger: Logger) async throws {
        var gid: gid_t?
        if let group {
            guard let entry = getgrnam(group) else {
                throw ListenError("--listen: the lane's socket_group \"\(group)\" is not a group on this host")
            }
            gid = entry.pointee.gr_gid
        }
        let sessions = HTTPSessions(lanes: server, maxSessions: maxSessions, logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // A stale socket from a dead server is replaced; an unrelated file is not.
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw ListenError("--listen unix:\(path): the path exists and is not a socket")
            }
            unlink(path)
        }
        let old = umask(0o177)  // the socket is created 0600: no window where others can connect
        defer { umask(old) }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(HTTPConnection(sessions: sessions))
                }
            }
            .bind(unixDomainSocketPath: path).get()
        umask(old)
        // With a socket_group: owned by it and 0660, set before the first accept is served.
        if let gid, chown(path, uid_t.max, gid) != 0 || chmod(path, 0o660) != 0 {
            try? await channel.close()
            throw ListenError("--listen unix:\(path): cannot give the socket to group \(gid): \(String(cString: strerror(errno)))")
        }
        logger.notice("listening", metadata: ["socket": "\(path)"])
        FileHandle.standardError.write(Data("lanes: mcp: listening on unix:\(path)\n".utf8))
        try await channel.closeFuture.get()
    }
}

struct ListenError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The peer of a unix socket connection (struct ucred: pid, uid, gid).
struct PeerCredentials: Sendable {
    var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
    var header: String { "pid=\(pid) uid=\(uid) gid=\(gid)" }
}

/// The MCP sessions of the listener: one SDK server and transport each, over the shared lanes server.
///
/// At most `maxSessions` (`--max-sessions`, default 256) stay open (each holds ~13 KiB; a
/// client that opened sessions in a loop, or agents that crash without closing theirs, grew the
/// server without bound): a new one beyond it closes the session used least recently that has no
/// request in progress, whose client then gets 404 and, as the protocol says, starts a new
/// session. When every session has a request in progress the new one is refused (503). An open
/// event stream is in progress until its connection closes (`HTTPConnection.streams`).
actor HTTPSessions {
    let lanes: LaneMCPServer
    let logger: Logger
    let maxSessions: Int
    private struct Session {
        let server: Server
        let transport: StatefulHTTPServerTransport
        /// When it was last used, in `clock` ticks, and its requests in progress.
        var lastUsed: UInt64
        var inFlight = 0
    }
    private var sessions: [String: Session] = [:]
    private var clock: UInt64 = 0

    init(lanes: LaneMCPServer, maxSessions: Int, logger: Logger) {
        self.lanes = lanes
        self.maxSessions = maxSessions
        self.logger = logger
    }

    private struct FixedID: SessionIDGenerator {
        let id: String
        func generateSessionID() -> String { id }
    }

    /// Answers `request`, and names the session it counted as in progress: call `finished` with
    /// it once the response, a stream included, is sent.
    func handle(_ request: HTTPRequest) async -> (response: HTTPResponse, session: String?) {
        if let id = request.header(HTTPHeaderName.sessionID), let session = sessions[id] {
            use(id, inFlight: 1)
            let response = await session.transport.handleRequest(request)
            if request.method.uppercased() == "DELETE" && response.statusCode == 200 { sessions[id] = nil }
            return (response, id)
        }
        return (await open(request), nil)
    }

    /// The response to `handle`'s request is sent.
    func finished(_ session: String?) {
        if let session { use(session, inFlight: -1) }
    }

    /// A request outside any open session: an `initialize` opens one.
    private func open(_ request: HTTPRequest) async -> HTTPResponse {
        if request.method.uppercased() == "POST", let body = request.body,
           let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], object["method"] as? String == "initialize" {
            if sessions.count >= maxSessions {
                guard let (oldest, session) = sessions.filter({ $0.value.inFlight == 0 }).min(by: { $0.value.lastUsed < $1.value.lastUsed }) else {
                    return .error(statusCode: 503, .internalError("too many sessions (\(maxSessions), --max-sessions), each with a request in progress; retry later"))
                }
                sessions[oldest] = nil
                logger.notice("session closed to make room", metadata: ["session": "\(oldest)", "open": "\(maxSessions)"])
                await session.server.stop()
            }
            let id = UUID().uuidString
            // Origin checks guard browsers on TCP; a unix socket has no origin to forge.
            let transport = StatefulHTTPServerTransport(
                sessionIDGenerator: FixedID(id: id),
                validationPipeline: StandardValidationPipeline(validators: [
                    AcceptHeaderValidator(mode: .sseRequired), ContentTypeValidator(), ProtocolVersionValidator(), SessionValidator(),
                ]),
                logger: logger)
            let server = await lanes.makeServer()
            do { try await server.start(transport: transport) } catch {
                return .error(statusCode: 500, .internalError("cannot start a session: \(error)"))
            }
            clock += 1
            sessions[id] = Session(server: server, transport: transport, lastUsed: clock)
            logger.info("session opened", metadata: ["session": "\(id)", "peer": "\(request.header(PeerHeader.name) ?? "")"])
            return await transport.handleRequest(request)
        }
        if request.header(HTTPHeaderName.sessionID) != nil {
            return .error(statusCode: 404, .invalidRequest("Not Found: session not found or closed"))
        }
        return .error(statusCode: 400, .invalidRequest("Bad Request: missing \(HTTPHeaderName.sessionID) header"))
    }

    /// Marks session `id` used now, with `inFlight` more (or fewer) requests in progress.
    private func use(_ id: String, inFlight: Int) {
        clock += 1
        sessions[id]?.lastUsed = clock
        sessions[id]?.inFlight += inFlight
    }
}

extension HTTPSessions {
    /// For a POSTed `tools/call` in a session: the `notifications/cancelled` request that cancels
    /// it (same session and headers). Nil for anything else.
    nonisolated static func cancellation(for request: HTTPRequest) -> HTTPRequest? {
        guard request.method.uppercased() == "POST", request.header(HTTPHeaderName.sessionID) != nil, let body = request.body,
              let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              object["method"] as? String == "tools/call", let id = object["id"] else { return nil }
        let note: [String: Any] = ["jsonrpc": "2.0", "method": "notifications/cancelled",
                                   "params": ["requestId": id, "reason": "the client disconnected"]]
        guard let data = try? JSONSerialization.data(withJSONObject: note) else { return nil }
        return HTTPRequest(method: "POST", headers: request.headers, body: data, path: request.path)
    }
}

enum PeerHeader {
    static let name = "X-Lanes-Peer"
}

/// One HTTP/1.1 connection: collects a request (bounded), hands it to the sessions, writes the
/// response (a JSON body or an SSE stream).
final class HTTPConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The largest request body accepted (a larger one is answered 413 and the connection closed).
    static let maxBody = 16 << 20
    let sessions: HTTPSessions
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false
    private var peer: PeerCredentials?
    /// The request being answered, when it is a call a disconnect must cancel.
    private var pending: HTTPRequest?
    /// The tasks reading response streams (SSE) onto this connection, by request. A stream the
    /// client is gone from must end, or its session counts as in use forever: the official
    /// client keeps a GET event stream open for the life of its session, so an agent killed
    /// while connected would hold its session until the server ends, and enough of them would
    /// have every new session refused (503).
    private var streams: [UInt64: Task<Void, Never>] = [:]
    private var nextStream: UInt64 = 0

    init(sessions: HTTPSessions) { self.sessions = sessions }

    func channelActive(context: ChannelHandlerContext) {
        if let provider = context.channel as? SocketOptionProvider {
            let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            future.whenSuccess { [self] in peer = $0 }
        }
        context.fireChannelActive()
    }

    /// A client that disconnects mid-call: its call is cancelled as if it had sent
    /// `notifications/cancelled`, so the step stops cleanly (recorded `stopped`).
    func channelInactive(context: ChannelHandlerContext) {
        for stream in streams.values { stream.cancel() }
        streams = [:]
        if let cancel = pending {
            pending = nil
            let sessions = self.sessions
            Task { await sessions.finished(await sessions.handle(cancel).session) }
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(h):
            head = h
            body = context.channel.allocator.buffer(capacity: 0)
            tooLarge = false
        case var .body(chunk):
            if tooLarge { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > Self.maxBody {
                tooLarge = true
                body = nil
                return
            }
            body?.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            if tooLarge {
                let response = HTTPResponse.error(statusCode: 413, .invalidRequest("request body larger than \(Self.maxBody) bytes"))
                write(response, version: head.version, context: context, close: true)
                return
            }
            var headers: [String: String] = [:]
            for (name, value) in head.headers where name.lowercased() != PeerHeader.name.lowercased() {
                headers[name] = headers[name].map { $0 + ", " + value } ?? value
            }
            if let peer { headers[PeerHeader.name] = peer.header }
            let bytes = body.flatMap { $0.getBytes(at: $0.readerIndex, length: $0.readableBytes) } ?? []
            let request = HTTPRequest(method: head.method.rawValue, headers: headers, body: bytes.isEmpty ? nil : Data(bytes),
                                      path: String(head.uri.split(separator: "?").first ?? ""))
            body = nil
            let sessions = self.sessions
            let cancellable = HTTPSessions.cancellation(for: request)
            pending = cancellable
            nonisolated(unsafe) let ctx = context
            Task {
                let (response, session) = await sessions.handle(request)
                await self.send(response, version: head.version, context: ctx)
                await sessions.finished(session)
                ctx.eventLoop.execute { if self.pending?.body == cancellable?.body { self.pending = nil } }
            }
        }
    }

    private func send(_ response: HTTPResponse, version: HTTPVersion, context: ChannelHandlerContext) async {
        nonisolated(unsafe) let ctx = context
        guard case let .stream(stream, _) = response else {
            ctx.eventLoop.execute { self.write(response, version: version, context: ctx, close: false) }
            return
        }
        ctx.eventLoop.execute {
            var head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.statusCode))
            for (name, value) in response.headers { head.headers.add(name: name, value: value) }
            ctx.writeAndFlush(self.wrapOutboundOut(.head(head)), promise: nil)
        }
        // Its own task, so that the connection closing cancels it (the iteration then ends).
        let reader = Task {
            do {
                for try await chunk in stream {
                    ctx.eventLoop.execute {
                        var buffer = ctx.channel.allocator.buffer(capacity: chunk.count)
                        buffer.writeBytes(chunk)
                        ctx.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                    }
                }
            } catch {}
        }
        let id: UInt64 = (try? await ctx.eventLoop.submit {
            // Registered on the event loop, where channelInactive runs: a connection already
            // closed cancels it here.
            guard ctx.channel.isActive else { reader.cancel(); return 0 }
            self.nextStream += 1
            self.streams[self.nextStream] = reader
            return self.nextStream
        }.get()) ?? 0
        await reader.value
        ctx.eventLoop.execute {
            self.streams[id] = nil
            ctx.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    private func write(_ response: HTTPResponse, version: HTTPVersion, context: ChannelHandlerContext, close: Bool) {
        var head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.statusCode))
        for (name, value) in response.headers { head.headers.add(name: name, value: value) }
        let data = response.bodyData ?? Data()
        head.headers.replaceOrAdd(name: "Content-Length", value: "\(data.count)")
        if close { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !data.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: data.count)
            buffer.writeBytes(data)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
