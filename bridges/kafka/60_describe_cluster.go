package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeCluster, v0-1: the cluster id, the controller and the brokers,
// as Metadata gives them.

func init() { register(60, 0, 1, false, handleDescribeCluster) }

func handleDescribeCluster(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID, resp.ControllerID = c.l.cfg.ClusterID, int32(c.l.coordinatorNode())
	for _, b := range c.brokers() {
		resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port})
	}
	return resp, nil
}
