// Command pause is the pod sandbox ("pause") image of the local test
// cluster (scripts/kube-cluster): it holds a pod's namespaces, reaps the
// children it inherits as PID 1 of a pod with a shared process namespace,
// and exits on SIGTERM or SIGINT. Built static, it is the whole image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
