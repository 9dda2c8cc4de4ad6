package local_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/varpar/varpar/deploy/local"
)

// Three peers of a built varpar binary on loopback: wait for them to agree,
// kill one with SIGKILL, and see the others take its variants over.
func Example() {
	c, err := local.New("bin/varpar", "") // "": the family built into the binary
	if err != nil {
		log.Fatal(err)
	}
	defer c.Shutdown(10*time.Second, false) // stops every peer, removes the files

	ps, err := c.Start(local.Spec{Name: "a"}, local.Spec{Name: "b"}, local.Spec{Name: "c"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	cv, err := c.WaitReady(ctx, ps, time.Minute)
	if err != nil {
		log.Fatal(err) // says what each peer lacks, with its last log lines
	}
	victim, sole := local.ChooseVictim(cv, c.Names())
	if err := c.ByName(victim).Kill(); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, ok := local.WatchRecovery(ctx, ps[0].API, victim); ok {
		fmt.Printf("the cluster re-planned %v after %s died\n", sole, victim)
	}
}
