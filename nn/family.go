package nn

// FamilyFormat is the value of the "format" field of a family.json this code writes and reads.
const FamilyFormat = "varpar-family/1"

// Manifest is the content of a family's family.json.
type Manifest struct {
	Format   string        `json:"format"`         // FamilyFormat
	Name     string        `json:"name"`           // family name
	Classes  []string      `json:"classes"`        // ordered class names; len == every variant's num_classes
	Variants []VariantInfo `json:"variants"`       // the variants that serve
	Base     *VariantInfo  `json:"base,omitempty"` // the full model the variants are compared with, if any
}

// VariantInfo is one model of a family.
type VariantInfo struct {
	ID           string  `json:"id"`                      // unique within the family, [A-Za-z0-9._-]
	Spec         Spec    `json:"spec"`                    // architecture and preprocessing
	Weights      string  `json:"weights"`                 // safetensors file, relative to the family directory
	SHA256       string  `json:"sha256"`                  // lowercase hex SHA-256 of the weights file
	FusionWeight float64 `json:"fusion_weight,omitempty"` // 0 or absent: the paper's default
}
