import CLaneSys
import Glibc
import LaneModel
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The per-step caps of the proxy.
public struct EgressLimits: Sendable {
    /// Connections open at once; the next one is closed at once and recorded as denied.
    public var maxConnections: Int
    /// Bytes both ways over the whole step; a connection that crosses it is cut.
    public var maxBytes: UInt64?
    /// Records kept per list (connections, denied); the rest are only counted.
    public static let recordsKept = 1000
    /// Denial lines printed to stderr per step; the rest are summed up in one line at the end.
    public static let linesPrinted = 20

    /// Reads of up to 256 KiB (NIO's default stops at 64 KiB): fewer syscalls per byte relayed;
    /// backpressure still bounds what one connection holds.
    static let readAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 16_384, maximum: 256 << 10)

    public init(maxConnections: Int, maxBytes: UInt64?) {
        self.maxConnections = maxConnections
        self.maxBytes = maxBytes
    }
}

/// A step's egress proxy (docs/network.md). `lane-init` accepts connections on loopback inside the
/// step's network namespace and passes their fds over a unix socket; a receiving thread adopts
/// each into SwiftNIO, where `ProxyHandler` reads the request (HTTP CONNECT, plain HTTP, SOCKS5),
/// asks the `EgressPolicy`, resolves the name itself, refuses special addresses, connects to the
/// address it checked, and relays with `GlueHandler`. `stop()` ends it and returns the record.
public final class EgressProxy: Sendable {
    let group: MultiThreadedEventLoopGroup
    /// getaddrinfo blocks: it runs here, never on the event loop.
    let resolver: NIOThreadPool
    /// Runs the loop that receives fds from lane-init.
    let receiver: NIOThreadPool
    let channelFd: Int32
    let ledger: EgressLedger

    /// Starts the proxy on the supervisor's end of the egress socketpair (it takes ownership).
    /// `report` receives the stderr lines (one per denial, capped).
    public init(policy: EgressPolicy, limits: EgressLimits, channelFd: Int32,
                report: @escaping @Sendable (String) -> Void) {
        self.channelFd = channelFd
        ledger = EgressLedger(limits: limits, report: report)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        resolver = NIOThreadPool(numberOfThreads: 2)
        resolver.start()
        receiver = NIOThreadPool(numberOfThreads: 1)
        receiver.start()
        let context = ProxyContext(policy: policy, ledger: ledger, resolver: resolver)
        let (fd, group, ledger) = (channelFd, group, ledger)
        receiver.submit { _ in Self.receive(fd: fd, group: group, ledger: ledger, context: context) }
    }

    /// Adopts every fd lane-init sends until the channel ends (the step's relay died or `stop`).
    static func receive(fd: Int32, group: EventLoopGroup, ledger: EgressLedger, context: ProxyContext) {
        while true {
            let conn = lane_egress_recv_fd(fd)
            if conn == -2 { return }
            if conn < 0 {
                if errno == EINTR || errno == EPROTO { continue }
                return
            }
            guard ledger.admit() else {
                close(conn)
                ledger.finish(EgressConnection(host: "?", port: 0, rule: "connection limit: \(ledger.limits.maxConnections) open at once",
                                               allowed: false, via: "tcp"))
                continue
            }
            ClientBootstrap(group: group)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelOption(.recvAllocator, value: EgressLimits.readAllocator)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ProxyHandler(context: context))
                        channel.closeFuture.whenComplete { _ in ledger.release() }
                    }
                }
                .withConnectedSocket(conn)
                .whenFailure { _ in
                    close(conn)
                    ledger.release()
                }
        }
    }

    /// Stops receiving, closes every connection, and returns what the step did. Nothing of the
    /// proxy is left afterwards (no thread, no socket).
    public func stop() -> NetworkRecord {
        _ = shutdown(channelFd, Int32(SHUT_RDWR))
        try? receiver.syncShutdownGracefully()
        close(channelFd)
        try? group.syncShutdownGracefully()
        try? resolver.syncShutdownGracefully()
        return ledger.close()
    }
}

/// What every connection handler shares.
struct ProxyContext: Sendable {
    let policy: EgressPolicy
    let ledger: EgressLedger
    let resolver: NIOThreadPool
}

/// The step's counters and records, behind a lock (the receiving thread and the event loop both
/// write). Bounded: at most `recordsKept` records per list whatever the step does.
final class EgressLedger: Sendable {
    struct State {
        var active = 0
        var record = NetworkRecord()
        var printed = 0
    }
    let limits: EgressLimits
    let report: @Sendable (String) -> Void
    let state = NIOLockedValueBox(State())

    init(limits: EgressLimits, report: @escaping @Sendable (String) -> Void) {
        self.limits = limits
        self.report = report
    }

    func admit() -> Bool {
        state.withLockedValue { s in
            guard s.active < limits.maxConnections else { return false }
            s.active += 1
            return true
        }
    }

    func release() { state.withLockedValue { $0.active -= 1 } }

    /// Counts bytes; false once the step's byte cap is crossed (the caller cuts the connection).
    func count(out: Int, in inbound: Int) -> Bool {
        state.withLockedValue { s in
            s.record.bytesOut &+= UInt64(out)
            s.record.bytesIn &+= UInt64(inbound)
            guard let cap = limits.maxBytes else { return true }
            return s.record.egressBytes <= cap
        }
    }

    /// Adds one finished attempt; a denial also prints its line (up to `linesPrinted`).
    func finish(_ c: EgressConnection) {
        let line: String? = state.withLockedValue { s in
            s.record.attempts += 1
            if !c.allowed { s.record.deniedCount += 1 }
            if c.allowed && s.record.connections.count < EgressLimits.recordsKept {
                s.record.connections.append(c)
            } else if !c.allowed && s.record.denied.count < EgressLimits.recordsKept {
                s.record.denied.append(c)
            } else {
                s.record.omitted += 1
            }
            guard !c.allowed, s.printed < EgressLimits.linesPrinted else { return nil }
            s.printed += 1
            return c.denialLine
        }
        if let line { report(line) }
    }

    func close() -> NetworkRecord {
        let (record, printed) = state.withLockedValue { ($0.record, $0.printed) }
        if record.deniedCount > printed {
            report("lanes: egress denied: \(record.deniedCount - printed) more attempts (see the step's network record)")
        }
        return record
    }
}
