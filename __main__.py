"""aws2aliyun-vpc: one site-to-site VPN between an AWS VPC and an Alibaba Cloud VPC."""

from components.program import main

main()
