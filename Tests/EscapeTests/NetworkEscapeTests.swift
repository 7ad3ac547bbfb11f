import Foundation
import Glibc
import LaneTestSupport
import Testing

/// Listeners the test process holds open on the host: TCP on 127.0.0.1 (a random port) and a
/// unix socket in the abstract namespace (which belongs to the network namespace, not to any
/// filesystem, so a mount view cannot hide it: only the step's own net namespace does).
final class HostListeners {
    let tcp: Int32
    let port: UInt16
    let unix: Int32
    let abstractName: String

    convenience init() throws {
        try self.init(abstractName: "lanes-escape-" + UUID().uuidString.prefix(8))
    }


    init(abstractName: String) throws {
        self.abstractName = abstractName
        let tcpFd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var inet = sockaddr_in()
        inet.sin_family = sa_family_t(AF_INET)
        inet.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &inet) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(tcpFd, $0, length) == 0 && listen(tcpFd, 16) == 0 && getsockname(tcpFd, $0, &length) == 0
            }
        }
        let unixFd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var local = sockaddr_un()
        local.sun_family = sa_family_t(AF_UNIX)
        let name = Array(abstractName.utf8)
        withUnsafeMutableBytes(of: &local.sun_path) { path in
            path[0] = 0  // the abstract namespace
            for (i, byte) in name.enumerated() { path[1 + i] = byte }
        }
        let size = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.count)
        let listening = withUnsafePointer(to: &local) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(unixFd, $0, size) == 0 && listen(unixFd, 16) == 0 }
        }
        tcp = tcpFd
        unix = unixFd
        port = UInt16(bigEndian: inet.sin_port)
        guard tcpFd >= 0, bound, unixFd >= 0, listening else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    deinit {
        close(tcp)
        close(unix)
    }
}

/// Network egress and host sockets: the step has its own network namespace with only a
/// loopback of its own, so the host's loopback listeners and abstract sockets do not exist there.
@Suite("Escape: network")
struct NetworkEscapeTests {
    @Test("a host loopback listener and a host abstract unix socket are unreachable", arguments: Escape.identities)
    func hostListeners(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let listeners = try HostListeners()
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let actions = ["tcp_connect=\(listeners.port)", "abstract_connect=\(listeners.abstractName)"]

        // Control: from the host both connect (the backlog accepts without an accept call).
        let host = Escape.results(try Escape.host(ws + "/syscalls", actions).stdout)
        #expect(host["tcp_connect"] == 0, "control: the host cannot reach its own listener: \(host)")
        #expect(host["abstract_connect"] == 0, "control: the host cannot reach its own abstract socket: \(host)")

        let step = try Escape.step(identity, in: ws, [ws + "/syscalls"] + actions)
        #expect(step.status == 0, "\(step)")
        let inside = Escape.results(step.stdout)
        for key in ["tcp_connect", "abstract_connect"] {
            // Refused by the step's own empty loopback (or unreachable, with no loopback at all).
            #expect([ECONNREFUSED, ENETUNREACH].contains(inside[key] ?? 0),
                    "\(key) inside reached the host: \(inside[key].map { "errno \($0)" } ?? "no result") (\(identity))")
        }
        withExtendedLifetime(listeners) {}
    }
}
