import NIOCore

/// Relays bytes between the step's connection and the upstream one, with backpressure: a side
/// reads only while the other side is writable, so a fast sender never fills the supervisor's
/// memory. Counts bytes each way into the connection's tracker (and the step's cap).
/// (The shape of SwiftNIO's connect-proxy example's GlueHandler.)
final class GlueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// The client side counts what the step sends (out); the upstream side what it receives (in).
    private let isClient: Bool
    private let tracker: ConnectionTracker

    private init(isClient: Bool, tracker: ConnectionTracker) {
        self.isClient = isClient
        self.tracker = tracker
    }

    /// (client side, upstream side).
    static func matchedPair(tracker: ConnectionTracker) -> (GlueHandler, GlueHandler) {
        let client = GlueHandler(isClient: true, tracker: tracker)
        let upstream = GlueHandler(isClient: false, tracker: tracker)
        client.partner = upstream
        upstream.partner = client
        return (client, upstream)
    }

    private func partnerWrite(_ data: NIOAny) { context?.write(data, promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerWriteEOF() { context?.close(mode: .output, promise: nil) }
    private func partnerCloseFull() { context?.close(promise: nil) }
    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }
    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let n = unwrapInboundIn(data).readableBytes
        guard tracker.count(out: isClient ? n : 0, in: isClient ? 0 : n) else {
            partner?.partnerCloseFull()
            context.close(promise: nil)
            return
        }
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }

    func channelInactive(context: ChannelHandlerContext) { partner?.partnerCloseFull() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
