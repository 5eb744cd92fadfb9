"""The pure core both the Pulumi program (components/) and the gateway's renderer
(userdata/) stand on, and the lab and the tools read: crypto profiles, stack settings and
the gateway's file paths. Nothing here imports Pulumi."""
