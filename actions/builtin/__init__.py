"""The built-in mitigation actions, one module each (action name = module name = YAML key)."""
