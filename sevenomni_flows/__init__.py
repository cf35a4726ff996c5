"""sevenomni_flows: jobflow Makers for screening with SevenNet models (to come)."""
