// memberlist-harness runs N HashiCorp memberlist nodes in one process on
// loopback UDP and TCP and answers rumor-bench's commands on standard input,
// one a line, with one JSON value a line on standard output.
//
// Build offline against Debian's packages (GOPATH mode):
//
//	GO111MODULE=off GOPATH=$PWD/gopath:/usr/share/gocode go build -o memberlist-harness .
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

const basePort = 7000

func nodeName(i int) string { return fmt.Sprintf("node-%d", i) }

func nodeIndex(name string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "node-"))
	if err != nil {
		return -1
	}
	return i
}

// update is a small state update: key = value from origin at version.
type update struct {
	Origin  int    `json:"o"`
	Version uint64 `json:"v"`
	Key     string `json:"k"`
	Value   string `json:"val"`
}

type broadcast struct {
	u   update
	msg []byte
}

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*broadcast)
	return ok && o.u.Origin == b.u.Origin && o.u.Version < b.u.Version
}
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}

// node is one memberlist instance and what it knows.
type node struct {
	mu     sync.Mutex
	state  map[int]update
	queue  *memberlist.TransmitLimitedQueue
	list   *memberlist.Memberlist
	downs  []uint64
	downMu *sync.Mutex
}

// merge keeps u if it is newer than what the node holds; reports whether it was.
func (n *node) merge(u update) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cur, ok := n.state[u.Origin]; ok && cur.Version >= u.Version {
		return false
	}
	n.state[u.Origin] = u
	return true
}

func (n *node) NodeMeta(limit int) []byte { return nil }
func (n *node) NotifyMsg(b []byte) {
	var u update
	if json.Unmarshal(b, &u) != nil {
		return
	}
	if n.merge(u) {
		n.queue.QueueBroadcast(&broadcast{u: u, msg: append([]byte(nil), b...)})
	}
}
func (n *node) GetBroadcasts(overhead, limit int) [][]byte {
	return n.queue.GetBroadcasts(overhead, limit)
}
func (n *node) LocalState(join bool) []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, _ := json.Marshal(n.state)
	return b
}
func (n *node) MergeRemoteState(buf []byte, join bool) {
	var remote map[int]update
	if json.Unmarshal(buf, &remote) != nil {
		return
	}
	for _, u := range remote {
		n.merge(u)
	}
}

// events counts the failures each node declares.
type events struct{ n *node }

func (e events) NotifyJoin(*memberlist.Node)   {}
func (e events) NotifyUpdate(*memberlist.Node) {}
func (e events) NotifyLeave(m *memberlist.Node) {
	if i := nodeIndex(m.Name); i >= 0 && i < len(e.n.downs) {
		e.n.downMu.Lock()
		e.n.downs[i]++
		e.n.downMu.Unlock()
	}
}

func main() {
	nodes := flag.Int("nodes", 10, "cluster size")
	_ = flag.Int64("seed", 1, "seed (memberlist draws its own randomness)")
	gossipMs := flag.Int("gossip-ms", 200, "gossip interval")
	fanout := flag.Int("fanout", 3, "gossip fanout")
	probeMs := flag.Int("probe-ms", 1000, "probe interval")
	probeTimeoutMs := flag.Int("probe-timeout-ms", 500, "probe timeout")
	indirect := flag.Int("indirect", 3, "indirect checks")
	suspicionMult := flag.Int("suspicion-mult", 4, "suspicion multiplier")
	pushPullS := flag.Int("push-pull-s", 30, "push-pull interval")
	flag.Parse()
	log.SetOutput(os.Stderr)

	downs := make([]uint64, *nodes)
	downMu := &sync.Mutex{}
	all := make([]*node, *nodes)
	for i := 0; i < *nodes; i++ {
		n := &node{state: map[int]update{}, downs: downs, downMu: downMu}
		c := memberlist.DefaultLANConfig()
		c.Name = nodeName(i)
		c.BindAddr = "127.0.0.1"
		c.BindPort = basePort + i
		c.AdvertisePort = basePort + i
		c.GossipInterval = time.Duration(*gossipMs) * time.Millisecond
		c.GossipNodes = *fanout
		c.ProbeInterval = time.Duration(*probeMs) * time.Millisecond
		c.ProbeTimeout = time.Duration(*probeTimeoutMs) * time.Millisecond
		c.IndirectChecks = *indirect
		c.SuspicionMult = *suspicionMult
		c.PushPullInterval = time.Duration(*pushPullS) * time.Second
		c.Delegate = n
		c.Events = events{n}
		c.LogOutput = io.Discard
		n.queue = &memberlist.TransmitLimitedQueue{
			NumNodes:       func() int { return n.list.NumMembers() },
			RetransmitMult: c.RetransmitMult,
		}
		list, err := memberlist.Create(c)
		if err != nil {
			fmt.Printf("error: starting node %d: %v\n", i, err)
			os.Exit(1)
		}
		n.list = list
		all[i] = n
	}

	out := bufio.NewWriter(os.Stdout)
	answer := func(v interface{}) {
		b, _ := json.Marshal(v)
		out.Write(b)
		out.WriteByte('\n')
		out.Flush()
	}
	holds := func(n *node, target int) bool {
		name := nodeName(target)
		for _, m := range n.list.Members() {
			if m.Name == name {
				return true
			}
		}
		return false
	}
	var version uint64
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		arg := func(k int) int {
			if k >= len(f) {
				return -1
			}
			v, err := strconv.Atoi(f[k])
			if err != nil {
				return -1
			}
			return v
		}
		switch f[0] {
		case "ready":
			answer("ok")
		case "join":
			seed := fmt.Sprintf("127.0.0.1:%d", basePort)
			for i := 1; i < len(all); i++ {
				go func(n *node) { n.list.Join([]string{seed}) }(all[i])
			}
			answer("ok")
		case "counts":
			counts := []int{}
			for _, n := range all {
				if n != nil {
					counts = append(counts, n.list.NumMembers())
				}
			}
			answer(counts)
		case "down":
			t := arg(1)
			c := 0
			for i, n := range all {
				if n != nil && i != t && !holds(n, t) {
					c++
				}
			}
			answer(c)
		case "crash":
			t := arg(1)
			if t >= 0 && t < len(all) && all[t] != nil {
				all[t].list.Shutdown()
				all[t] = nil
			}
			answer("ok")
		case "update":
			i := arg(1)
			if i < 0 || i >= len(all) || all[i] == nil || len(f) < 4 {
				fmt.Println("error: update needs a running node, a key and a value")
				continue
			}
			version++
			u := update{Origin: i, Version: version, Key: f[2], Value: f[3]}
			b, _ := json.Marshal(u)
			all[i].merge(u)
			all[i].queue.QueueBroadcast(&broadcast{u: u, msg: b})
			answer("ok")
		case "seen":
			c := 0
			for _, n := range all {
				if n == nil || len(f) < 3 {
					continue
				}
				n.mu.Lock()
				for _, u := range n.state {
					if u.Key == f[1] && u.Value == f[2] {
						c++
						break
					}
				}
				n.mu.Unlock()
			}
			answer(c)
		case "downs":
			downMu.Lock()
			answer(downs)
			downMu.Unlock()
		case "quit":
			answer("ok")
			for _, n := range all {
				if n != nil {
					n.list.Shutdown()
				}
			}
			return
		default:
			fmt.Printf("error: unknown command %q\n", f[0])
		}
	}
}
