import Foundation
import MCP

/// The progress notifications of one tool call (MCP `notifications/progress`), sent only when its
/// request carried a progress token. A call can wait three ways, and a host that sees nothing for
/// a while may give up on it: for a free step slot (`--max-steps`), for its step to finish, and
/// for a human's approval (`approval_wait_seconds`); each sends one notification a second, and
/// the two that wait on something other than the step also one as they begin, so the host learns
/// at once why its call is not running yet. The progress value is the seconds since the call
/// arrived, strictly increasing over all three (the protocol requires it to increase).
final class CallProgress: @unchecked Sendable {
    private let token: ProgressToken?
    private let server: Server
    private let arrived = ContinuousClock.now
    private let lock = NSLock()
    private var last = 0.0

    init(token: ProgressToken?, server: Server) {
        self.token = token
        self.server = server
    }

    /// Runs `body`; meanwhile, with a token, sends `message(whole seconds in this phase)` every
    /// second, and first at once when `immediately`.
    func during<T: Sendable>(immediately: Bool, _ message: @escaping @Sendable (Int) -> String,
                             _ body: () async throws -> T) async throws -> T {
        guard let token else { return try await body() }
        let ticker = Task {
            var seconds = 0
            if immediately { await send(token, message(seconds)) }
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                seconds += 1
                await send(token, message(seconds))
            }
        }
        defer { ticker.cancel() }
        return try await body()
    }

    private func send(_ token: ProgressToken, _ message: String) async {
        // Seconds to the millisecond, and at least a millisecond past the last one sent.
        let value = lock.withLock { () -> Double in
            last = max(((ContinuousClock.now - arrived) / .milliseconds(1)).rounded() / 1000, last + 0.001)
            return last
        }
        try? await server.notify(ProgressNotification.message(.init(progressToken: token, progress: value, message: message)))
    }
}
