"""Rewrite a price file from the AWS Price List API (see README.md beside it).

Usage: python files/prices/refresh.py <region> > files/prices/<region>.yml
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import yaml

HERE = Path(__file__).resolve().parent
#: The root volume types a notebook instance may have (notebook_root_volume.type).
VOLUME_TYPES = ("gp3", "gp2")


def on_demand_usd(pricing: Any, service: str, filters: dict[str, str]) -> float:
    """The single on-demand USD rate matching `filters`; fails loudly when not exactly one."""
    found = pricing.get_products(
        ServiceCode=service,
        Filters=[{"Type": "TERM_MATCH", "Field": key, "Value": value} for key, value in filters.items()],
        MaxResults=100,
    )["PriceList"]
    rates = set()
    for raw in found:
        product = json.loads(raw)
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term["priceDimensions"].values():
                rate = float(dimension["pricePerUnit"]["USD"])
                if rate > 0:
                    rates.add(rate)
    if len(rates) != 1:
        raise SystemExit(f"{service} {filters}: expected one on-demand rate, found {sorted(rates)}")
    return rates.pop()


def main(region: str) -> None:
    current = yaml.safe_load((HERE / f"{region}.yml").read_text()) if (HERE / f"{region}.yml").exists() else {}
    pricing = boto3.client("pricing", region_name="us-east-1")
    instances = {
        name: on_demand_usd(
            pricing,
            "AmazonEC2",
            {"regionCode": region, "instanceType": name, "operatingSystem": "Linux", "tenancy": "Shared",
             "preInstalledSw": "NA", "capacitystatus": "Used", "licenseModel": "No License required"},
        )
        for name in sorted(current.get("instance_hourly") or {"m5.xlarge": 0})
    }
    out = {
        "region": region,
        "currency": "USD",
        "read_on": date.today().isoformat(),
        "source": "AWS Price List API (pricing:GetProducts), on-demand, Linux, shared tenancy",
        "refresh": ".venv/bin/python files/prices/refresh.py <region> > files/prices/<region>.yml",
        "instance_hourly": instances,
        **{
            f"{volume_type}_gb_month": on_demand_usd(
                pricing, "AmazonEC2", {"regionCode": region, "volumeApiName": volume_type, "productFamily": "Storage"}
            )
            for volume_type in VOLUME_TYPES
        },
        # EFS storage classes of the work volumes (Regional, per GB-month).
        "efs_standard_gb_month": on_demand_usd(
            pricing, "AmazonEFS", {"regionCode": region, "usagetype": f"{usage_prefix(region)}TimedStorage-ByteHrs"}
        ),
        "efs_ia_gb_month": on_demand_usd(
            pricing, "AmazonEFS", {"regionCode": region, "usagetype": f"{usage_prefix(region)}IATimedStorage-ByteHrs"}
        ),
        "load_balancer_hourly": on_demand_usd(
            pricing, "AWSELB", {"regionCode": region, "productFamily": "Load Balancer-Application", "usagetype": f"{usage_prefix(region)}LoadBalancerUsage"}
        ),
        "nat_gateway_hourly": on_demand_usd(
            pricing, "AmazonEC2", {"regionCode": region, "productFamily": "NAT Gateway", "usagetype": f"{usage_prefix(region)}NatGateway-Hours"}
        ),
        "public_ipv4_hourly": on_demand_usd(
            pricing, "AmazonVPC", {"regionCode": region, "usagetype": f"{usage_prefix(region)}PublicIPv4:InUseAddress"}
        ),
    }
    sys.stdout.write("---\n# Written by files/prices/refresh.py; see README.md beside this file.\n")
    sys.stdout.write(yaml.safe_dump(out, sort_keys=False))


def usage_prefix(region: str) -> str:
    """Price List usage types start with a region code (EU-, USE1-...); us-east-1 has none."""
    codes = {"us-east-1": "", "eu-west-1": "EU-", "us-east-2": "USE2-", "us-west-2": "USW2-", "eu-central-1": "EUC1-",
             "eu-west-2": "EUW2-", "eu-west-3": "EUW3-", "eu-north-1": "EUN1-", "ap-southeast-1": "APS1-",
             "ap-southeast-2": "APS2-", "ap-northeast-1": "APN1-"}
    if region not in codes:
        raise SystemExit(f"add the Price List usage type prefix of {region} to usage_prefix()")
    return codes[region]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
