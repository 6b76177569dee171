"""The platform's resources, one module each, every endpoint written once as a flow."""
