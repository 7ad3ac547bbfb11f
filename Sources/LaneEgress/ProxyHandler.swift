import Glibc
import LaneModel
import NIOCore
import NIOPosix

/// One connection from the step: reads its request, decides, resolves, connects, then hands
/// the bytes to a pair of `GlueHandler`s and leaves the pipeline. Runs on the event loop only.
final class ProxyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let context: ProxyContext
    private var pending: [UInt8] = []
    private var greeted = false
    private var deciding = false
    let tracker: ConnectionTracker

    init(context: ProxyContext) {
        self.context = context
        tracker = ConnectionTracker(ledger: context.ledger)
    }

    /// How long a client may take to send its request before it is closed.
    static let requestTimeout = TimeAmount.seconds(30)

    func handlerAdded(context ctx: ChannelHandlerContext) {
        let tracker = self.tracker
        ctx.channel.closeFuture.assumeIsolated().whenComplete { _ in tracker.finish() }
        let channel = ctx.channel
        let timeout = ctx.eventLoop.assumeIsolated().scheduleTask(in: Self.requestTimeout) { [weak self] in
            if self?.deciding == false { channel.close(promise: nil) }
        }
        channel.closeFuture.whenComplete { _ in timeout.cancel() }
    }

    /// A client that half-closes before its request is complete is done: close it (and free
    /// its slot), rather than wait for bytes that cannot come.
    func userInboundEventTriggered(context ctx: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event, !deciding {
            ctx.close(promise: nil)
            return
        }
        ctx.fireUserInboundEventTriggered(event)
    }

    func channelRead(context ctx: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if let bytes = buffer.readBytes(length: buffer.readableBytes) { pending += bytes }
        guard !deciding else { return }
        while true {
            switch ProxyParser.parse(pending, greeted: greeted) {
            case .needMore:
                return
            case let .socksGreeting(length):
                pending.removeFirst(length)
                greeted = true
                ctx.writeAndFlush(wrapOutboundOut(ctx.channel.allocator.buffer(bytes: [5, 0])), promise: nil)
            case let .invalid(message):
                let reply: [UInt8] = greeted || pending.first == 5
                    ? [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]
                    : Array("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: \(message.utf8.count + 7)\r\n\r\nlanes: \(message)\n".utf8)
                ctx.writeAndFlush(wrapOutboundOut(ctx.channel.allocator.buffer(bytes: reply)), promise: nil)
                ctx.close(promise: nil)
                deciding = true
                return
            case let .request(request):
                deciding = true
                ctx.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                decide(ctx, request)
                return
            }
        }
    }

    func errorCaught(context ctx: ChannelHandlerContext, error: Error) {
        ctx.close(promise: nil)
    }

    /// Name first (deny wins), then the addresses the name resolves to.
    private func decide(_ ctx: ChannelHandlerContext, _ request: ProxyRequest) {
        let host = EgressPolicy.normalize(request.host)
        tracker.begin(host: request.host, port: request.port, via: request.via)
        let literal = IPAddress(host)
        guard literal != nil || isHostName(host) else {
            return deny(ctx, request, "not a host name or IP address")
        }
        let decision = context.policy.decide(host: host, port: request.port)
        guard decision.allowed else { return deny(ctx, request, decision.rule) }
        tracker.record.rule = decision.rule
        let resolved: EventLoopFuture<[IPAddress]>
        if let literal {
            resolved = ctx.eventLoop.makeSucceededFuture([literal])
        } else {
            resolved = context.resolver.runIfActive(eventLoop: ctx.eventLoop) { try Resolver.resolve(host) }
        }
        let bound = NIOLoopBound(ctx, eventLoop: ctx.eventLoop)
        resolved.assumeIsolated().whenComplete { result in
            let ctx = bound.value
            switch result {
            case .failure:
                self.fail(ctx, request, "cannot resolve \(host)")
            case let .success(addresses):
                var refusal: (IPAddress, String)?
                for a in addresses {
                    if let why = self.context.policy.refusal(address: a, port: request.port) {
                        if refusal == nil { refusal = (a, why) }
                        continue
                    }
                    self.tracker.record.address = a.description
                    return self.connect(ctx, request, a)
                }
                if let (a, why) = refusal {
                    self.tracker.record.address = a.description
                    return self.deny(ctx, request, why)
                }
                self.fail(ctx, request, "\(host) has no address")
            }
        }
    }

    private func connect(_ ctx: ChannelHandlerContext, _ request: ProxyRequest, _ address: IPAddress) {
        let socketAddress: SocketAddress
        do { socketAddress = try SocketAddress(ipAddress: address.unmapped.description, port: Int(request.port)) } catch {
            return fail(ctx, request, "bad address \(address)")
        }
        let (clientGlue, upstreamGlue) = GlueHandler.matchedPair(tracker: tracker)
        let upstreamBound = NIOLoopBound(upstreamGlue, eventLoop: ctx.eventLoop)
        let bound = NIOLoopBound(ctx, eventLoop: ctx.eventLoop)
        ClientBootstrap(group: ctx.eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.recvAllocator, value: EgressLimits.readAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(upstreamBound.value)
                }
            }
            .connect(to: socketAddress)
            .assumeIsolated()
            .whenComplete { result in
                let ctx = bound.value
                switch result {
                case let .failure(error):
                    self.fail(ctx, request, "connect to \(address) failed: \(error)")
                case let .success(upstream):
                    self.tracker.upstream = upstream
                    self.splice(ctx, request, clientGlue: clientGlue, upstream: upstream)
                }
            }
    }

    /// Answers the client, puts the glue (and for tunnels the SNI gate) in place, and leaves.
    private func splice(_ ctx: ChannelHandlerContext, _ request: ProxyRequest, clientGlue: GlueHandler, upstream: Channel) {
        var leftover: [UInt8] = []
        let ops = ctx.pipeline.syncOperations
        do {
            switch request {
            case let .connect(host, _, consumed), let .socks(host, _, consumed):
                let reply: [UInt8] = request.via == "socks5"
                    ? [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]
                    : Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)
                leftover = Array(pending.dropFirst(consumed))
                ctx.writeAndFlush(wrapOutboundOut(ctx.channel.allocator.buffer(bytes: reply)), promise: nil)
                try ops.addHandler(clientGlue, position: .after(self))
                try ops.addHandler(SNIGate(host: EgressPolicy.normalize(host), tracker: tracker), position: .after(self))
            case let .http(_, _, head, consumed):
                leftover = Array(pending.dropFirst(consumed))
                guard tracker.count(out: head.count, in: 0) else { throw ChannelError.outputClosed }
                upstream.writeAndFlush(upstream.allocator.buffer(bytes: head), promise: nil)
                try ops.addHandler(clientGlue, position: .after(self))
            }
        } catch {
            upstream.close(promise: nil)
            return fail(ctx, request, "pipeline: \(error)")
        }
        pending = []
        if !leftover.isEmpty {
            ctx.fireChannelRead(wrapInboundOut(ctx.channel.allocator.buffer(bytes: leftover)))
            ctx.fireChannelReadComplete()
        }
        ops.removeHandler(context: ctx, promise: nil)
        ctx.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
    }

    typealias InboundOut = ByteBuffer

    private func deny(_ ctx: ChannelHandlerContext, _ request: ProxyRequest, _ why: String) {
        tracker.record.allowed = false
        tracker.record.rule = why
        let text = "lanes: egress denied: \(tracker.record.endpoint) (\(why))\n"
        reply(ctx, request, http: "403 Forbidden", socks: 2, body: text)
    }

    /// An allowed attempt that could not be completed (it stays an allowed attempt, with an error).
    private func fail(_ ctx: ChannelHandlerContext, _ request: ProxyRequest, _ why: String) {
        tracker.record.error = why
        reply(ctx, request, http: "502 Bad Gateway", socks: 4, body: "lanes: \(why)\n")
    }

    private func reply(_ ctx: ChannelHandlerContext, _ request: ProxyRequest, http: String, socks: UInt8, body: String) {
        let bytes: [UInt8] = request.via == "socks5"
            ? [5, socks, 0, 1, 0, 0, 0, 0, 0, 0]
            : Array("HTTP/1.1 \(http)\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        ctx.writeAndFlush(wrapOutboundOut(ctx.channel.allocator.buffer(bytes: bytes))).assumeIsolated().whenComplete { _ in
            ctx.close(promise: nil)
        }
    }
}

/// One connection's record while it lives; handed to the ledger when the client side closes.
final class ConnectionTracker {
    let ledger: EgressLedger
    var record = EgressConnection(host: "?", port: 0, rule: "no request", allowed: false, via: "tcp")
    var started = NIODeadline.now()
    var begun = false
    var upstream: Channel?
    private var finished = false

    init(ledger: EgressLedger) { self.ledger = ledger }

    func begin(host: String, port: UInt16, via: String) {
        begun = true
        record.host = host
        record.port = port
        record.via = via
        record.allowed = true
        started = .now()
    }

    /// Counts bytes; cuts both sides when the step's byte cap is crossed.
    func count(out: Int, in inbound: Int) -> Bool {
        record.bytesOut &+= UInt64(out)
        record.bytesIn &+= UInt64(inbound)
        if ledger.count(out: out, in: inbound) { return true }
        record.error = "max_bytes reached (\(ledger.limits.maxBytes ?? 0) bytes per step)"
        return false
    }

    func finish() {
        guard !finished else { return }
        finished = true
        upstream?.close(promise: nil)
        // A client that connected and sent no request is not an attempt worth a record.
        guard begun else { return }
        record.durationMs = Double((NIODeadline.now() - started).nanoseconds) / 1_000_000
        ledger.finish(record)
    }
}

/// The first bytes of a tunnel: a TLS ClientHello whose SNI names another host than the one
/// the client asked to CONNECT to is refused (and recorded as a denial).
final class SNIGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let host: String
    let tracker: ConnectionTracker
    private var buffered: [UInt8] = []

    init(host: String, tracker: ConnectionTracker) {
        self.host = host
        self.tracker = tracker
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        buffered += buffer.readBytes(length: buffer.readableBytes) ?? []
        switch TLSClientHello.serverName(buffered) {
        case .needMore where buffered.count <= 16_389:
            return
        case let .name(name) where EgressPolicy.normalize(name) != host:
            tracker.record.allowed = false
            tracker.record.rule = "TLS SNI names \(name), not \(host)"
            tracker.upstream?.close(promise: nil)
            context.close(promise: nil)
        default:
            context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: buffered)))
            buffered = []
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

/// getaddrinfo, for the resolver thread pool.
enum Resolver {
    struct Failure: Error { let message: String }

    static func resolve(_ host: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0 else { throw Failure(message: String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(list) }
        var out: [IPAddress] = []
        var p = list
        while let ai = p {
            if let sa = ai.pointee.ai_addr {
                if ai.pointee.ai_family == AF_INET {
                    var a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    if let ip = IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }), !out.contains(ip) { out.append(ip) }
                } else if ai.pointee.ai_family == AF_INET6 {
                    var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    if let ip = IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }), !out.contains(ip) { out.append(ip) }
                }
            }
            p = ai.pointee.ai_next
        }
        return out
    }
}
