"""Drives the EC2 stand-in (moto) the way an operator drives AWS, with boto3.

Usage: python ec2ctl.py ENDPOINT REGION COMMAND [ARGS]
  run TYPE [COUNT [KEY=VALUE]] -> prints the new instance ids, one per line
                      (running; tagged KEY=VALUE when given)
  stop ID | start ID
  enable-access | disable-access
  access-status -> prints true or false
"""

import sys

import boto3

endpoint, region, command, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=region)
if command == "run":
    image = ec2.describe_images()["Images"][0]["ImageId"]
    count = int(args[1]) if len(args) > 1 else 1
    tags = []
    if len(args) > 2:
        key, value = args[2].split("=", 1)
        tags = [{"ResourceType": "instance", "Tags": [{"Key": key, "Value": value}]}]
    for _ in range(count):
        # One reservation each, as separate launches make (pagination counts them).
        out = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=args[0],
                                TagSpecifications=tags)
        print(out["Instances"][0]["InstanceId"])
elif command == "stop":
    ec2.stop_instances(InstanceIds=args)
elif command == "start":
    ec2.start_instances(InstanceIds=args)
elif command == "enable-access":
    ec2.enable_serial_console_access()
elif command == "disable-access":
    ec2.disable_serial_console_access()
elif command == "access-status":
    print(str(ec2.get_serial_console_access_status()["SerialConsoleAccessEnabled"]).lower())
else:
    sys.exit(f"unknown command {command}")
