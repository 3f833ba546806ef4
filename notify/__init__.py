"""notify: domain events -> WeChat subscribe messages and SMS. So far: the SMS senders."""
