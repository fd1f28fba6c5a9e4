"""HTTP only: parse requests, call the engine, render the contract's shapes and errors."""
