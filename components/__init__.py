"""The aws2aliyun-vpc program's parts: settings, crypto profiles, the two clouds, the link."""
