package mqtt

import (
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TestSubscribeIDsApartFromDeliveries: a device's SUBSCRIBE gets a
// stand-in packet id that none of mochi's next 65,000 deliveries to it
// takes (mochi keeps both directions' ids in one map and would answer the
// SUBSCRIBE 0x91 "packet identifier in use"), with deliveries in flight
// and without; its SUBACK gets the device's id back.
func TestSubscribeIDsApartFromDeliveries(t *testing.T) {
	for _, sent := range []int{0, 1, 40, 70_000} {
		srv := mochi.New(nil)
		cl := srv.NewClient(nil, "t", "dev", false)
		s := &session{}
		deliver := func() uint16 {
			i, err := cl.NextPacketID()
			if err != nil {
				t.Fatal(err)
			}
			id := uint16(i)
			cl.State.Inflight.Set(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: id})
			s.swaps.last.Store(uint32(id))
			if old := id - 16; old != 0 { // acknowledged: 16 in flight at most
				cl.State.Inflight.Delete(old)
			}
			return id
		}
		for range sent {
			deliver()
		}
		// The device's first SUBSCRIBE, id 1, and one with the id of the
		// newest delivery.
		own := []uint16{1, uint16(s.swaps.last.Load())}
		var stand []uint16
		for _, id := range own {
			if id == 0 {
				continue
			}
			alt := s.swaps.free(cl, id)
			if _, inUse := cl.State.Inflight.Get(alt); inUse {
				t.Fatalf("after %d deliveries: stand-in %d for %d is in flight", sent, alt, id)
			}
			stand = append(stand, alt)
		}
		for n := 1; n <= 65_000; n++ {
			id := deliver()
			for _, alt := range stand {
				if id == alt {
					t.Fatalf("after %d deliveries: delivery %d later took stand-in %d", sent, n, alt)
				}
			}
		}
		for i, alt := range stand {
			if got := s.ownID(alt); got != own[i] && own[i] != 0 {
				t.Fatalf("SUBACK of stand-in %d answered as %d, want the device's %d", alt, got, own[i])
			}
		}
	}
}
