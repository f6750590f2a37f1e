package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestMQTTPublishRate: with mqtt_publish_rate 20, a device that sends 60
// QoS 1 publishes as fast as it can gets a second's worth (20) at once
// and the rest at 20 a second, so its last PUBACK comes 2 s on; each is
// stored, none refused. Another device's 20 publishes meanwhile are not
// held behind it: they are all acknowledged before the flooding device's
// last.
func TestMQTTPublishRate(t *testing.T) {
	p := newProc(t)
	p.env = append(p.env, "EDDY_MQTT_PUBLISH_RATE=20")
	p.start()
	p.mustCreateTopic("r", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	send := func(id string, n int) (time.Time, time.Duration) {
		c := p.mqtt5(ctx, &paho.Connect{ClientID: id, CleanStart: true}, make(chan *paho.Publish, 1))
		start := time.Now()
		for i := 0; i < n; i++ {
			pr, err := c.Publish(ctx, &paho.Publish{Topic: "r/" + id, QoS: 1, Payload: []byte(fmt.Sprint(i))})
			if err != nil || pr.ReasonCode != 0 {
				t.Errorf("%s's publish %d: %v %+v", id, i, err, pr)
				break
			}
		}
		return time.Now(), time.Since(start)
	}
	var wg sync.WaitGroup
	var floodEnd, otherEnd time.Time
	var flood time.Duration
	wg.Add(2)
	go func() { defer wg.Done(); floodEnd, flood = send("flood", 60) }()
	go func() {
		defer wg.Done()
		time.Sleep(200 * time.Millisecond) // once the flood is being paced
		otherEnd, _ = send("other", 20)
	}()
	wg.Wait()
	if flood < 1800*time.Millisecond {
		t.Errorf("60 publishes at 20 a second (20 at once) took %v, want about 2 s", flood)
	}
	if !otherEnd.Before(floodEnd) {
		t.Errorf("the other device's 20 publishes ended %v after the flooding device's 60", otherEnd.Sub(floodEnd))
	}
	var off struct{ Latest int64 }
	if code, err := p.do("GET", "/v1/topics/r/partitions/0/offsets", "", nil, &off); err != nil || code != 200 || off.Latest != 80 {
		t.Fatalf("offsets: %d %v %+v, want all 80 stored", code, err, off)
	}
	if n := p.metric(`eddy_mqtt_publishes_paced_total{tenant="default"}`); n < 30 {
		t.Errorf("publishes paced: %v", n)
	}
}
