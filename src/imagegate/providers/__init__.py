"""Provider adapters: one small class per vendor behind ``providers.base.Provider``."""
