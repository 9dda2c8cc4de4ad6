package peer

import (
	"fmt"
	"reflect"
	"time"

	"github.com/spf13/pflag"
)

// ConfigFlags are the command-line flags of a Config, one per field, made
// from its flag and usage tags by BindFlags.
type ConfigFlags struct {
	f      *pflag.FlagSet
	values Config         // the flags write here
	fields map[string]int // flag name → field index
}

// BindFlags registers on f one flag per Config field, with the field's flag
// tag as its name, its usage tag as its help and its value in defaults as
// its default. It panics on a field without tags or of a type it cannot
// make a flag of: a programmer error that the package's tests catch.
func BindFlags(f *pflag.FlagSet, defaults Config) *ConfigFlags {
	cf := &ConfigFlags{f: f, values: defaults, fields: map[string]int{}}
	v := reflect.ValueOf(&cf.values).Elem()
	for i, field := range reflect.VisibleFields(v.Type()) {
		name, usage := field.Tag.Get("flag"), field.Tag.Get("usage")
		if name == "" || usage == "" || field.Tag.Get("yaml") == "" {
			panic(fmt.Sprintf("peer: Config.%s lacks a yaml, flag or usage tag", field.Name))
		}
		cf.fields[name] = i
		switch p := v.Field(i).Addr().Interface().(type) {
		case *string:
			f.StringVar(p, name, *p, usage)
		case *[]string:
			f.StringSliceVar(p, name, *p, usage)
		case *int:
			f.IntVar(p, name, *p, usage)
		case *int64:
			f.Int64Var(p, name, *p, usage)
		case *time.Duration:
			f.DurationVar(p, name, *p, usage)
		default:
			panic(fmt.Sprintf("peer: Config.%s: no flag for a %s", field.Name, field.Type))
		}
	}
	return cf
}

// Apply copies onto dst the value of every flag given on the command line,
// and of no other: flags win over a config file, defaults do not.
func (cf *ConfigFlags) Apply(dst *Config) {
	src, out := reflect.ValueOf(&cf.values).Elem(), reflect.ValueOf(dst).Elem()
	cf.f.Visit(func(fl *pflag.Flag) {
		if i, ok := cf.fields[fl.Name]; ok {
			out.Field(i).Set(src.Field(i))
		}
	})
}
