// Command etcd is etcd's own server entry point (go.etcd.io/etcd/server/v3/etcdmain), built at the
// version k8s.io/kubernetes pins, so the real control plane needs no prebuilt etcd binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
