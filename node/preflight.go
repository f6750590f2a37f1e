package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// preflight checks, before the node writes anything (its identity, the
// Raft data, the token, the CLI profile), that every address it will
// listen on is free and that its data directory is writable, so a failed
// first start leaves nothing behind that binds the directory to an
// address it never used. (A port taken between this check and the bind
// still fails the start, later.)
func (c *Config) preflight() error {
	for _, l := range []struct{ name, flag, addr string }{
		{"HTTP", "--http-addr", c.HTTPAddr},
		{"Raft", "--raft-addr", c.RaftAddr},
		{"MQTT", "--mqtt-addr", c.mqttListen()},
		{"MQTT WebSocket", "--mqtt-ws-addr", c.wsListen()},
		{"Kafka", "--kafka-addr", c.kafkaListen()},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("the %s address %s is in use by another process (another eddy node?); choose another with %s: nothing was written", l.name, l.addr, l.flag)
			}
			return fmt.Errorf("the %s address %s cannot be used (%v); choose another with %s: nothing was written", l.name, l.addr, err, l.flag)
		}
		ln.Close()
	}
	return c.writableDataDir()
}

// writableDataDir tells a read-only or foreign data directory apart from
// one in use by another node (which the Raft store's lock reports).
func (c *Config) writableDataDir() error {
	dir := c.DataDir
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent // the nearest existing ancestor is where it will be made
	}
	f, err := os.CreateTemp(dir, ".eddy-write-check-*")
	if err != nil {
		switch {
		case errors.Is(err, syscall.EROFS):
			return fmt.Errorf("the data directory %s is on a read-only file system; give --data-dir a writable place", c.DataDir)
		case errors.Is(err, os.ErrPermission):
			return fmt.Errorf("the data directory %s is not writable by this user (uid %d); fix its owner or mode, or give --data-dir another place", c.DataDir, os.Getuid())
		}
		return fmt.Errorf("the data directory %s is not writable: %w", c.DataDir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// The listen addresses of the optional listeners ("" when off).
func (c *Config) mqttListen() string {
	if c.MQTTAddr == "off" {
		return ""
	}
	return c.MQTTAddr
}

func (c *Config) wsListen() string {
	if c.MQTTWSAddr == "off" || c.mqttListen() == "" {
		return ""
	}
	return c.MQTTWSAddr
}

func (c *Config) kafkaListen() string {
	if !c.kafkaOn() {
		return ""
	}
	return c.KafkaAddr
}
