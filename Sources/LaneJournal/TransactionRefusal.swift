/// An error a transaction body throws to refuse what it was asked (a governance rule, a missing
/// run): `transact` turns it into a `.conflict` with its message, never "cannot write".
public protocol TransactionRefusal: Error {
    /// What a person reads.
    var message: String { get }
}
