module github.com/eddy-broker/eddy

go 1.26.0

require github.com/twmb/franz-go/pkg/kmsg v1.15.0

replace github.com/cockroachdb/pebble => github.com/cockroachdb/pebble v0.0.0-20221207173255-0f086d933dac
