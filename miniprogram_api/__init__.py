"""The WeChat door: mini-program login, phone binding, subscription messages, wxacode, content security."""
