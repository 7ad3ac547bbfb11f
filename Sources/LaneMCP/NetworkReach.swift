import LaneModel

/// What a lane's steps can reach over the network, as `lanes mcp` tells the model in
/// `run_command`'s description and annotations. Taken from the lane and its profile when the
/// server starts (the tool list does not change while it serves).
public enum NetworkReach: Sendable, Equatable {
    /// `[network] mode = "none"`: a network namespace with only loopback.
    case none
    /// `mode = "proxy"`: HTTP(S) through the egress proxy to the allowed hosts.
    case proxy(allow: [String], deny: [String])

    /// The reach of `profile`'s network with `lane`'s extra allows.
    public init(profile: Profile, lane: Lane) {
        switch profile.network.mode {
        case .none: self = .none
        case .proxy:
            // The lane's own hosts first: with more than a sentence names, they are the ones
            // this lane was made for.
            self = .proxy(allow: (lane.networkAllow + profile.network.allow).map(\.text), deny: profile.network.deny.map(\.text))
        }
    }

    var isOpen: Bool {
        if case let .proxy(allow, _) = self { return !allow.isEmpty }
        return false
    }

    /// One sentence for the model. At most 12 hosts are named.
    var sentence: String {
        switch self {
        case .none:
            return "This lane has no network: only loopback inside the sandbox, so downloads and remote APIs fail."
        case let .proxy(allow, deny):
            guard !allow.isEmpty else {
                return "This lane's egress proxy allows no host: only loopback inside the sandbox."
            }
            let named = allow.prefix(12).joined(separator: ", ") + (allow.count > 12 ? " and \(allow.count - 12) more" : "")
            let denied = deny.isEmpty ? "" : " (never \(deny.prefix(12).joined(separator: ", ")))"
            return "This lane reaches the network only through its egress proxy (HTTP_PROXY and HTTPS_PROXY are set): "
                + "\(named)\(denied); a connection to any other host is refused and recorded."
        }
    }
}
