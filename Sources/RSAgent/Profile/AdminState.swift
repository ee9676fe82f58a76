/// The admin states an operator can set on a realserver.
public enum AdminState: String, Sendable, CaseIterable, Codable {
    /// In service.
    case ready
    /// Finish what is running, take nothing new: the load report says weight 0.
    case drain
    /// The operator is working on the box: rsagent stops re-asserting and reports `maint`.
    case maint
}
