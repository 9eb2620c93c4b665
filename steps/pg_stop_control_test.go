package steps

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// controlBytes is the head of a control file as PostgreSQL writes it: the
// system identifier, pg_control_version, the state, the latest checkpoint
// and its timeline (at 48 from version 1100 on, at 56 before).
func controlBytes(order binary.ByteOrder, version, state uint32, checkpoint uint64, tli uint32) []byte {
	b := make([]byte, controlHead)
	order.PutUint64(b[0:], 7716647590127696791)
	order.PutUint32(b[8:], version)
	order.PutUint32(b[12:], 202209061)
	order.PutUint32(b[16:], state)
	order.PutUint64(b[32:], checkpoint)
	at := 48
	if version < 1100 {
		at = 56
	}
	order.PutUint32(b[at:], tli)
	return b
}

// hexLine is the stop script's line for head, as od -An -t x1 prints it.
func hexLine(head []byte) string {
	var f []string
	for _, b := range head {
		f = append(f, fmt.Sprintf("%02x", b))
	}
	return checkpointed + " " + strings.Join(f, " ")
}

func TestControlHeadFields(t *testing.T) {
	for _, c := range []struct {
		name    string
		head    []byte
		want    string // "id lsn tli", or the error
		wantErr bool
	}{
		{name: "PostgreSQL 15, little-endian", head: controlBytes(binary.LittleEndian, 1300, 1, 0x4317440, 16), want: "7716647590127696791 0/4317440 16"},
		{name: "big-endian", head: controlBytes(binary.BigEndian, 1700, 1, 0x1_0000_0028, 3), want: "7716647590127696791 1/28 3"},
		{name: "PostgreSQL 10, timeline after prevCheckPoint", head: controlBytes(binary.LittleEndian, 1002, 1, 0x5000028, 7), want: "7716647590127696791 0/5000028 7"},
		{name: "in production", head: controlBytes(binary.LittleEndian, 1300, 6, 0x4317440, 16), want: "state 6, not shut down", wantErr: true},
		{name: "not a control file", head: make([]byte, controlHead), want: "no pg_control_version", wantErr: true},
		{name: "cut short", head: controlBytes(binary.LittleEndian, 1300, 1, 1, 1)[:40], want: "40 bytes read", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			head, ok := checkpointedHead("some line\n" + hexLine(c.head) + "\n")
			if !ok {
				t.Fatal("checkpointedHead found no head")
			}
			cd, err := controlHeadFields(head)
			if c.wantErr {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%s %s %s", cd["Database system identifier"], cd[controlCheckpoint], cd[controlTimeline])
			if got != c.want || cd[controlState] != stateShutDown {
				t.Errorf("got %q, state %q; want %q, shut down", got, cd[controlState], c.want)
			}
		})
	}
	if _, ok := checkpointedHead("switchover:not-running\n"); ok {
		t.Error("checkpointedHead found a head where the script printed none")
	}
}
