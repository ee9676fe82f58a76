import Testing

@testable import Netlink

/// nftables: tables and their comments read back over nfnetlink (what the MSS clamp's
/// ownership rests on), and libnftables driven in a private namespace.
struct NFTablesTests {
    /// libnftnl's user-data records: type 0 is the comment, NUL-terminated; others are skipped.
    @Test func theCommentIsFoundInTheUserData() {
        let hello: [UInt8] = [0, 6] + Array("hello".utf8) + [0]
        #expect(NFTables.comment(inUserdata: hello) == "hello")
        #expect(NFTables.comment(inUserdata: [7, 2, 1, 2] + hello) == "hello", "another record first")
        #expect(NFTables.comment(inUserdata: [0, 9, 1]) == nil, "truncated")
        #expect(NFTables.comment(inUserdata: []) == nil)
    }

    @Test(.enabled(if: PrivateNamespace.isPrivate, PrivateNamespace.reason))
    func aTableMadeByLibnftablesIsReadBackWithItsComment() throws {
        let nft = try NFTables()
        try nft.run("table inet rsagent_test { comment \"made by a test\"; }\n", operation: "nft add table")
        #expect(try NFTables.inetTables().contains(NFTable(name: "rsagent_test", comment: "made by a test")))
        try nft.run("delete table inet rsagent_test\n", operation: "nft delete table")
        #expect(!(try NFTables.inetTables().contains { $0.name == "rsagent_test" }))
        // nft's own words come back as the reason.
        #expect(throws: NetlinkError.self) { try nft.run("delete table inet rsagent_test\n", operation: "nft delete") }
    }
}
