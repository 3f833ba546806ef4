"""accounts: citizens (phone + SMS code, WeChat), staff (username + password), tokens, profile."""
