package sandbox

import "context"

// FleetUpWith is FleetUp with up standing in for Up for each cluster: a
// test's way to make one cluster fail.
func FleetUpWith(ctx context.Context, o FleetOptions, up func(context.Context, Options) (*Sandbox, error)) (*Fleet, error) {
	return fleetUp(ctx, o, up)
}
