"""tlbkit's shipped presets: each sub-folder is an exported run (see `tlbkit.presets`), found by name."""
