package nn_test

import (
	"fmt"
	"log"
	"path/filepath"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

// A family's first variant classifies an image: the three most likely classes
// and their probabilities.
func Example() {
	dir := filepath.Join("testdata", "golden", "golden10")
	fam, err := format.LoadFamily(dir)
	if err != nil {
		log.Fatal(err)
	}
	pool := nn.NewPool(1)
	defer pool.Close()
	v := fam.Manifest.Variants[0]
	img, err := nn.LoadImageFile(filepath.Join(dir, v.ID+".png"), nn.DefaultMaxPixels)
	if err != nil {
		log.Fatal(err)
	}
	idx, prob := make([]int32, 3), make([]float32, 3)
	fam.Models[0].NewRunner(pool).TopK(img, idx, prob)
	for i := range idx {
		fmt.Printf("%s %.2f\n", fam.Manifest.Classes[idx[i]], prob[i])
	}
	// Output:
	// c3 0.70
	// c9 0.13
	// c2 0.10
}
