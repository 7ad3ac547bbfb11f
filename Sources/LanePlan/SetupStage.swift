import CLaneSys

/// One stage of a step's set-up, from the one list in `CLaneSys/include/lane_stages.h`: the C
/// core, `lane-init` and the supervisor report a failure by its number and every message names
/// it by the header's string, so a 125 names the same stage whichever layer failed.
public struct SetupStage: Sendable, Hashable, CustomStringConvertible {
    /// The stage's number (a `LANE_STAGE_…` constant).
    public let code: Int32

    /// The stage `LANE_STAGE_…`.
    public init(_ stage: lane_stage) { code = Int32(bitPattern: stage.rawValue) }

    /// The stage with number `code`, or nil when the header has none (a corrupt report).
    public init?(code: Int32) {
        guard lane_stage_name(code) != nil else { return nil }
        self.code = code
    }

    /// The header's name of the stage.
    public var name: String { lane_stage_name(code).map { String(cString: $0) } ?? "stage \(code)" }

    public var description: String { name }

    /// Every stage of the header, in number order.
    public static var all: [SetupStage] { (0...Int32(LANE_STAGE_MAX)).compactMap { SetupStage(code: $0) } }

    /// The one-line reason of a set-up failure: `STAGE: DETAIL: REASON` (the detail, e.g. a
    /// mount target, only when there is one). Every layer's 125 message starts with the stage.
    public func message(detail: String = "", reason: String) -> String {
        name + ": " + (detail.isEmpty ? "" : detail + ": ") + reason
    }
}
