// Command vmroot reads VMware appliance disks in place, layers a
// copy-on-write union over them and serves it to many VMs.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:           "vmroot",
	Short:         "Run many VMs from one appliance image",
	SilenceUsage:  true,
	SilenceErrors: true,
}

// usageError marks errors caused by the command line rather than the input.
type usageError struct{ error }

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "vmroot: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
