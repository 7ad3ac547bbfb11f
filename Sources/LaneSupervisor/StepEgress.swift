import CLaneSys
import Glibc
import LaneEgress
import LaneModel
import LanePlan

/// Proxy mode's part of a step (issue 12): the socketpair made before the clone, the proxy on
/// the supervisor's end, the variables that point the step's tools at it.
struct StepEgress {
    let proxy: EgressProxy
    /// lane-init's end; `Spawner` passes it as fd 5 and closes it.
    let childEnd: Int32

    /// Starts the proxy for `request` when its profile asks for one; nil in mode `none`.
    static func start(_ request: StepRequest) throws(LanesError) -> StepEgress? {
        let net = request.profile.network
        guard net.mode == .proxy else { return nil }
        var fds: [Int32] = [-1, -1]
        guard lane_egress_socketpair(&fds) == 0 else {
            throw LanesError(.setupFailed, stage: "egress proxy", errno: errno, "socketpair failed: \(String(cString: strerror(errno)))")
        }
        let policy = EgressPolicy(allow: net.allow, deny: net.deny, lane: request.lane.name)
        let proxy = EgressProxy(policy: policy, limits: EgressLimits(maxConnections: net.maxConnections, maxBytes: net.maxBytes),
                                channelFd: fds[0], report: { line in
                                    let text = line + "\n"
                                    _ = text.withCString { write(2, $0, strlen($0)) }
                                })
        return StepEgress(proxy: proxy, childEnd: fds[1])
    }

    /// The variables that send HTTP(S) and SOCKS clients to the step's proxy.
    static func environment(port: UInt16) -> [(String, String)] {
        let http = "http://127.0.0.1:\(port)", socks = "socks5h://127.0.0.1:\(port)", none = "localhost,127.0.0.1,::1"
        var vars: [(String, String)] = []
        for (name, value) in [("HTTP_PROXY", http), ("HTTPS_PROXY", http), ("ALL_PROXY", socks), ("NO_PROXY", none)] {
            vars.append((name, value))
            vars.append((name.lowercased(), value))
        }
        return vars
    }
}

/// `lanes doctor`'s check of proxy mode.
public enum EgressProbe {
    /// `lanes doctor`: whether proxy mode can run here (a SEQPACKET socketpair for the fd
    /// channel, and the proxy starting and stopping). Nil when it can; otherwise why not.
    public static func probe() -> String? {
        var fds: [Int32] = [-1, -1]
        guard lane_egress_socketpair(&fds) == 0 else {
            return "socketpair(AF_UNIX, SOCK_SEQPACKET) failed: \(String(cString: strerror(errno)))"
        }
        close(fds[1])
        let proxy = EgressProxy(policy: EgressPolicy(allow: [], deny: [], lane: "doctor"),
                                limits: EgressLimits(maxConnections: 1, maxBytes: nil), channelFd: fds[0], report: { _ in })
        _ = proxy.stop()
        return nil
    }
}
