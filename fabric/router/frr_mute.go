package router

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// An FRR ToR mutes BFD towards a node (a one-way path failure, as the GoBGP
// router's bfdrun does in-process) with an nftables rule in the ToR's own
// namespace: packets to the node's BFD ports (3784 single hop, 4785 echo, 4784
// multihop) are dropped on output; BGP and everything else pass. The table is
// the router's alone and goes with the namespace.

const nftMuteTable = "ecmplb_bfd_mute"

// nftMuteScript creates the (empty) mute set and the rule that uses it.
func nftMuteScript() string {
	return "table ip " + nftMuteTable + " {\n" +
		"\tset muted {\n\t\ttype ipv4_addr\n\t}\n" +
		"\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n" +
		"\t\tip daddr @muted udp dport { 3784, 3785, 4784 } drop\n\t}\n}\n"
}

// nftMuteElement adds (mute) or deletes (unmute) a node in the set.
func nftMuteElement(addr netip.Addr, muted bool) []string {
	op := "delete"
	if muted {
		op = "add"
	}
	return []string{op, "element", "ip", nftMuteTable, "muted", "{ " + addr.String() + " }"}
}

// runNft runs nft in the calling process's namespace, with a script on stdin
// when script is not empty.
func runNft(ctx context.Context, script string, args ...string) error {
	cmd := exec.CommandContext(ctx, "nft", args...)
	if script != "" {
		cmd.Stdin = strings.NewReader(script)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
