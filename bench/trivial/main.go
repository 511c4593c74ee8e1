// Command trivial reads one JSON object from standard input and writes one
// back: the cost of starting a Go process and exchanging JSON, which make
// bench subtracts from keyward's plugin timings to show its own overhead.
package main

import (
	"encoding/json"
	"os"
)

func main() {
	var req map[string]any
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"keyId": req["keyId"], "keySpec": "EC-256"}); err != nil {
		os.Exit(1)
	}
}
